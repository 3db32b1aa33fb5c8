//! `GET /ping`: liveness. Like upstream execd, it sits behind the token check when a
//! token is configured (the SDK fails fast on a 401 from it).

use axum::http::StatusCode;

/// 200 with an empty body.
pub async fn ping() -> StatusCode {
    StatusCode::OK
}
