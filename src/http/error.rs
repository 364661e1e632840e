//! Protocol refusals. Each maps to one status code and a short reason that is
//! sent as `{"error": reason}`; after any of them the connection closes.

/// Why a request was refused before reaching the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// 400: the bytes are not a valid HTTP/1.x request.
    BadRequest(&'static str),
    /// 408: the head (or body) did not arrive within the timeout.
    RequestTimeout,
    /// 413: the declared or decoded body exceeds `--max-body`.
    PayloadTooLarge,
    /// 414: the request-target exceeds the limit.
    UriTooLong,
    /// 417: an `Expect` other than `100-continue`.
    ExpectationFailed,
    /// 431: the head or the number of fields exceeds the limit.
    HeadersTooLarge,
    /// 501: a transfer coding we do not implement.
    NotImplemented(&'static str),
    /// 505: a version other than HTTP/1.0 and HTTP/1.1.
    VersionNotSupported,
}

impl HttpError {
    pub fn status(self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::RequestTimeout => 408,
            HttpError::PayloadTooLarge => 413,
            HttpError::UriTooLong => 414,
            HttpError::ExpectationFailed => 417,
            HttpError::HeadersTooLarge => 431,
            HttpError::NotImplemented(_) => 501,
            HttpError::VersionNotSupported => 505,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            HttpError::BadRequest(r) | HttpError::NotImplemented(r) => r,
            HttpError::RequestTimeout => "request not received in time",
            HttpError::PayloadTooLarge => "request body too large",
            HttpError::UriTooLong => "request target too long",
            HttpError::ExpectationFailed => "unsupported expectation",
            HttpError::HeadersTooLarge => "request header fields too large",
            HttpError::VersionNotSupported => "HTTP version not supported",
        }
    }

    /// Low-cardinality value for the `error.type` span attribute.
    pub fn kind(self) -> &'static str {
        match self {
            HttpError::BadRequest(_) => "bad_request",
            HttpError::RequestTimeout => "request_timeout",
            HttpError::PayloadTooLarge => "payload_too_large",
            HttpError::UriTooLong => "uri_too_long",
            HttpError::ExpectationFailed => "expectation_failed",
            HttpError::HeadersTooLarge => "headers_too_large",
            HttpError::NotImplemented(_) => "not_implemented",
            HttpError::VersionNotSupported => "version_not_supported",
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.reason())
    }
}
