//! Tools beside training: the training-speed benchmark and the device check.

pub mod bench;
pub mod device_check;
