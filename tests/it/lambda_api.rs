//! A local Lambda Invoke API answered by in-process handlers: what moto's Step Functions
//! interpreter calls (through `MOTO_PORT`) when a Task invokes one of the project's Lambdas.
//! A handler error is answered the way Lambda does: 200 with `X-Amz-Function-Error: Unhandled`
//! and `{"errorType", "errorMessage"}`.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// A handler's answer: the payload, or `(errorType, errorMessage)`.
pub type Answer = Result<Value, (String, String)>;
type Handler = Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// The running API; `calls()` lists the functions invoked, in order.
pub struct LambdaApi {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<String>>>,
}

impl LambdaApi {
    pub async fn start(handlers: Vec<(&str, Handler)>) -> Self {
        let handlers: Arc<HashMap<String, Handler>> = Arc::new(
            handlers
                .into_iter()
                .map(|(name, handler)| (name.to_owned(), handler))
                .collect(),
        );
        let calls = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = calls.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (handlers, calls) = (handlers.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request| invoke(handlers.clone(), calls.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, calls }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// Wraps an async closure as a handler.
pub fn handler<F, Fut>(function: F) -> Handler
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    Arc::new(move |payload| Box::pin(function(payload)))
}

async fn invoke(
    handlers: Arc<HashMap<String, Handler>>,
    calls: Arc<Mutex<Vec<String>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = percent_decode(request.uri().path());
    let function = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(|name| name.rsplit(':').next().unwrap_or(name).to_owned());
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(handler) = function.as_ref().and_then(|name| handlers.get(name)) else {
        let message = json!({ "Message": format!("no function at {path}") }).to_string();
        return Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(message.into()))
            .unwrap());
    };
    calls
        .lock()
        .unwrap()
        .push(function.clone().unwrap_or_default());
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let response = match handler(payload).await {
        Ok(value) => Response::builder()
            .status(StatusCode::OK)
            .body(Full::new(value.to_string().into())),
        Err((error_type, error_message)) => Response::builder()
            .status(StatusCode::OK)
            .header("X-Amz-Function-Error", "Unhandled")
            .body(Full::new(
                json!({ "errorType": error_type, "errorMessage": error_message })
                    .to_string()
                    .into(),
            )),
    };
    Ok(response.unwrap())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(value) = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
