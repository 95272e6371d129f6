#!/bin/sh
# Builds a RAUC test rig in $1: a CA and a signer, two ext4 slot files, a system.conf
# with a custom bootloader handler (boot order in files under $1/boot), and signed plain
# bundles: good.raucb (compatible lwm2md-test, version 2.0) and wrong-compatible.raucb.
set -e
T=$1
cd "$T"
mkdir -p pki data mnt content bad
openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/ca.key -out pki/ca.pem -days 2 -subj /CN=test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout pki/signer.key -out pki/signer.csr -subj /CN=signer 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > pki/ext
openssl x509 -req -in pki/signer.csr -CA pki/ca.pem -CAkey pki/ca.key -CAcreateserial -out pki/signer.pem -days 2 -extfile pki/ext 2>/dev/null
for s in a b; do truncate -s 32M slot-$s.img; mkfs.ext4 -q -F slot-$s.img; done
cat > bootloader.sh <<'H'
#!/bin/sh
# RAUC custom bootloader backend: the primary slot and each slot's state in files.
D=$(dirname "$0")/boot
mkdir -p "$D"
case "$1" in
  get-primary) cat "$D/primary" 2>/dev/null || echo A ;;
  set-primary) if [ -e "$D/refuse" ]; then echo "boot order locked" >&2; exit 1; fi
    if [ -e "$D/slow" ]; then sleep 1; fi
    echo "$2" > "$D/primary"; echo good > "$D/state-$2" ;;
  get-state) cat "$D/state-$2" 2>/dev/null || echo good ;;
  set-state) echo "$3" > "$D/state-$2" ;;
  get-current) cat "$D/primary" 2>/dev/null || echo A ;;
esac
H
chmod +x bootloader.sh
cat > system.conf <<C
[system]
compatible=lwm2md-test
bootloader=custom
mountprefix=$T/mnt
data-directory=$T/data

[handlers]
bootloader-custom-backend=$T/bootloader.sh

[keyring]
path=$T/pki/ca.pem

[slot.rootfs.0]
device=$T/slot-a.img
type=ext4
bootname=A

[slot.rootfs.1]
device=$T/slot-b.img
type=ext4
bootname=B
C
bundle() { # dir compatible version out
  mkdir -p "$1/rootfs"; echo "$3" > "$1/rootfs/version"
  rm -f "$1/rootfs.ext4"; truncate -s 4M "$1/rootfs.ext4"; mkfs.ext4 -q -F -d "$1/rootfs" "$1/rootfs.ext4"
  printf '[update]\ncompatible=%s\nversion=%s\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n' "$2" "$3" > "$1/manifest.raucm"
  rm -f "$4"; rauc bundle --cert=pki/signer.pem --key=pki/signer.key --keyring=pki/ca.pem "$1" "$4" >/dev/null 2>&1 || rauc bundle --cert=pki/signer.pem --key=pki/signer.key --keyring=pki/ca.pem "$1" "$4"
  rm -rf "$1/rootfs"
}
bundle content lwm2md-test 2.0 good.raucb
bundle bad other-device 9.9 wrong-compatible.raucb
