//! An in-process stand-in for taosd speaking the wire protocol, scripted per request, so the
//! client can be tested without a server build.

use common::wire::{self, Request, Response};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the fake server does with one request.
pub enum Action {
    Reply(Response),
    /// Drop the connection without answering.
    Close,
}

pub struct FakeServer {
    pub port: u16,
    /// Every request received, in order.
    pub log: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    pub async fn start<F>(handler: F) -> FakeServer
    where
        F: Fn(&Request) -> Action + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let log2 = log.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let handler = handler.clone();
                let log = log2.clone();
                tokio::spawn(async move {
                    while let Ok(Some(frame)) = wire::read_frame(&mut sock).await {
                        let Ok((id, req)) = wire::decode::<Request>(&frame) else {
                            return;
                        };
                        log.lock().expect("log").push(req.clone());
                        match handler(&req) {
                            Action::Reply(resp) => {
                                if wire::write_frame(&mut sock, id, &resp).await.is_err() {
                                    return;
                                }
                            }
                            Action::Close => return,
                        }
                    }
                });
            }
        });
        FakeServer { port, log }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }
}

/// The usual reply to Connect.
pub fn connected(db: Option<&str>) -> Response {
    Response::Connected {
        conn_id: 7,
        server_version: "3.3.6.0".into(),
        cluster_id: 42,
        db: db.map(str::to_string),
    }
}
