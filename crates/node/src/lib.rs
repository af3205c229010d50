use napi_derive::napi;

#[napi]
pub fn core_version() -> String { reflink_pool_core::version().to_string() }
