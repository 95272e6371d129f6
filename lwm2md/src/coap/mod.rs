//! CoAP for the engine, sans-IO: the message layer (RFC 7252) on top of coap-lite's
//! packet encoding, and block-wise transfers (RFC 7959).

pub mod block;
pub mod block_stream;
mod message_layer;

pub use block::{
    block2_slice, Block1Assembler, Block1Error, Block1Key, Block1Progress, Block2Error, BlockError,
    BlockOption,
};
pub use message_layer::{CoapParams, Event, IncomingRequest, MessageLayer, RequestId, Transmit};
