#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2md::coap::block::{BlockOption, MAX_BLOCK_NUM, MAX_SZX};

fuzz_target!(|data: &[u8]| {
    let Ok(block) = BlockOption::parse(data) else {
        return;
    };
    assert!(
        block.num <= MAX_BLOCK_NUM && block.szx <= MAX_SZX,
        "{block:?}"
    );
    let _ = (block.size(), block.offset());
    let bytes = block.encode();
    assert!(bytes.len() <= 3);
    assert_eq!(
        BlockOption::parse(&bytes),
        Ok(block),
        "{data:02x?} -> {bytes:02x?}"
    );
    assert_eq!(
        BlockOption::new(block.num, block.more, block.szx),
        Ok(block)
    );
});
