//! A fake OpenAI upstream for benchmarks: answers `/v1/responses` with the same small Responses
//! answer and every other POST with the same small chat completion, at once.
//! `microloop-fake-upstream [ADDR]` (default 127.0.0.1:20129).

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Santa is a story."}}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;

const RESPONSE: &str = r#"{"id":"resp_bench","object":"response","created_at":1,"status":"completed","model":"m","output":[{"type":"message","id":"msg_bench","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Santa is a story.","annotations":[]}]}],"usage":{"input_tokens":12,"output_tokens":5,"total_tokens":17}}"#;

async fn answer() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], ANSWER)
}

async fn response() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], RESPONSE)
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:20129".into());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        eprintln!("fake upstream on http://{addr}");
        axum::serve(l, Router::new().route("/v1/responses", post(response)).fallback(answer)).await.unwrap();
    });
}
