//! A JSON body extractor that answers in the API's error shape: 413 past the size limit,
//! 400 for missing or malformed JSON (never FastAPI's 422).

use super::State;
use crate::error::ApiErrorResponse;
use axum::extract::{FromRequest, Request};
use gatehouse_lifecycle::{codes, ApiError};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

/// A request body parsed as JSON into `T`.
pub struct JsonBody<T>(pub T);

fn too_large(limit: usize) -> ApiErrorResponse {
    ApiErrorResponse(ApiError::new(
        413,
        codes::PAYLOAD_TOO_LARGE,
        format!("Request body exceeds the limit of {limit} bytes."),
    ))
}

impl<T: DeserializeOwned> FromRequest<State> for JsonBody<T> {
    type Rejection = ApiErrorResponse;

    async fn from_request(req: Request, state: &State) -> Result<Self, Self::Rejection> {
        let limit = state.max_body_bytes;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let bytes = Limited::new(req.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    too_large(limit)
                } else {
                    ApiErrorResponse(ApiError::bad_request(
                        codes::INVALID_REQUEST_BODY,
                        "The request body could not be read.",
                    ))
                }
            })?
            .to_bytes();
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiErrorResponse(ApiError::bad_request(
                codes::INVALID_REQUEST_BODY,
                "A JSON request body is required.",
            )));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiErrorResponse(ApiError::bad_request(
                codes::INVALID_REQUEST_BODY,
                format!("The request body is not valid: {e}."),
            ))
        })
    }
}
