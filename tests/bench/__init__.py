"""The lwm2md test bench: an independent LwM2M server, its own codecs, and daemon helpers."""
