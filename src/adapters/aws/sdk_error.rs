//! An SDK failure in a few words, for the adapters' error messages: the service's error code and
//! the start of its message, or what kind of failure it was. Never a request or response body.

use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};

/// How much of AWS's error message a description keeps.
const MESSAGE_LIMIT: usize = 200;

/// `<code>: <message>` (the message cut at 200 characters), `<code>`, or `timed out`, `no
/// connection`, `unreadable response`, `request not built`, `HTTP <status>`.
pub(super) fn describe<E: ProvideErrorMetadata>(error: &SdkError<E>) -> String {
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => {
            let message: String = message.chars().take(MESSAGE_LIMIT).collect();
            format!("{code}: {message}")
        }
        (Some(code), None) => code.to_owned(),
        (None, _) => match error {
            SdkError::TimeoutError(_) => "timed out".to_owned(),
            SdkError::DispatchFailure(_) => "no connection".to_owned(),
            SdkError::ResponseError(_) => "unreadable response".to_owned(),
            SdkError::ConstructionFailure(_) => "request not built".to_owned(),
            _ => status(error).map_or_else(|| "unknown error".to_owned(), |s| format!("HTTP {s}")),
        },
    }
}

/// The HTTP status of the service's answer, when there was one.
pub(super) fn status<E>(error: &SdkError<E>) -> Option<u16> {
    error
        .raw_response()
        .map(|response| response.status().as_u16())
}
