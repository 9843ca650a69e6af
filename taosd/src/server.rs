//! The client endpoint on serverPort: one task per TCP connection speaking `common::wire`.
//! A connection must authenticate first; results are kept per connection until fetched to the
//! end, freed, or the connection drops. Each authenticated connection is registered in
//! `Coordinator::conns` (SHOW CONNECTIONS / QUERIES) and ends when another session kills it; a
//! running read-only statement ends with "Query killed" (0x022D) when killed.

use crate::conns::ConnGuard;
use crate::coordinator::Coordinator;
use crate::exec::{Output, Session};
use common::wire::{self, Request, Response, BLOCK_ROWS};
use common::{Block, Code, Field, Precision, SessionTz, TaosError, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

struct Pending {
    rows: std::vec::IntoIter<Vec<Value>>,
    ncols: usize,
}

fn take_block(p: &mut Pending) -> (Block, bool) {
    let mut b = Block::with_columns(p.ncols);
    for row in p.rows.by_ref().take(BLOCK_ROWS) {
        b.push_row(row);
    }
    let done = p.rows.len() == 0;
    (b, done)
}

pub async fn serve(dnode: Arc<Coordinator>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                let _ = sock.set_nodelay(true);
                let d = dnode.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(d, sock, peer.to_string()).await {
                        tracing::debug!(%peer, error = %e, "connection closed with error");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Resolves when `kill` is notified; never without one.
async fn killed(kill: Option<Arc<Notify>>) {
    match kill {
        Some(k) => k.notified().await,
        None => std::future::pending().await,
    }
}

async fn handle(dnode: Arc<Coordinator>, sock: TcpStream, peer: String) -> Result<(), TaosError> {
    let (r, w) = sock.into_split();
    let mut r = BufReader::with_capacity(1 << 20, r);
    let mut w = BufWriter::with_capacity(1 << 16, w);
    let mut session: Option<Session> = None;
    let mut results: HashMap<u64, Pending> = HashMap::new();
    let mut next_result = 1u64;
    let mut registered: Option<ConnGuard<'_>> = None;
    loop {
        let kill = registered.as_ref().map(|g| g.kill.clone());
        let read = tokio::select! {
            f = wire::read_frame(&mut r) => f,
            _ = killed(kill.clone()) => {
                tracing::info!(%peer, "connection killed");
                return Ok(());
            }
        };
        if let Some(s) = &session {
            dnode.conns.touch(s.conn_id);
        }
        let frame = match read {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => {
                // A garbled frame: say why, then drop the connection (the stream is out of sync).
                let _ = wire::write_frame(&mut w, 0, &Response::Error(e.clone())).await;
                let _ = tokio::io::AsyncWriteExt::flush(&mut w).await;
                return Err(e);
            }
        };
        let (req_id, req): (u64, Request) = match wire::decode(&frame) {
            Ok(x) => x,
            Err(e) => {
                wire::write_frame(&mut w, 0, &Response::Error(e)).await?;
                tokio::io::AsyncWriteExt::flush(&mut w).await?;
                continue;
            }
        };
        let resp = match (req, &mut session) {
            (
                Request::Connect {
                    user,
                    password,
                    db,
                    tz,
                    app,
                },
                _,
            ) => match connect(&dnode, user, password, db, tz, app) {
                Ok(s) => {
                    let resp = Response::Connected {
                        conn_id: s.conn_id,
                        server_version: common::SERVER_VERSION.into(),
                        cluster_id: dnode.mnode.read(|c| c.cluster_id),
                        db: s.db.clone(),
                    };
                    registered = Some(dnode.conns.open(s.conn_id, &s.user, &s.app, &peer));
                    session = Some(s);
                    resp
                }
                Err(e) => Response::Error(e),
            },
            (Request::Ping, _) => Response::Pong,
            (_, None) => Response::Error(TaosError::new(
                Code::AUTH_FAILURE,
                "Authentication failure: connect first",
            )),
            (Request::Query { sql }, Some(s)) => match {
                let cancel = dnode.conns.begin(s.conn_id, &sql);
                let out = if crate::conns::is_read_only(&sql) {
                    tokio::select! {
                        out = dnode.execute(s, &sql) => out,
                        _ = cancel.notified() => Err(TaosError::of(Code::TSC_QUERY_KILLED)),
                        _ = killed(kill) => {
                            tracing::info!(%peer, "connection killed");
                            return Ok(());
                        }
                    }
                } else {
                    dnode.execute(s, &sql).await
                };
                dnode.conns.end(s.conn_id);
                out
            } {
                Ok(Output::Affected(n)) => Response::Executed {
                    affected_rows: n,
                    db: s.db.clone(),
                },
                Ok(Output::Rows(rows)) => {
                    let fields: Vec<Field> = rows.fields;
                    let precision: Precision = rows.precision;
                    let mut p = Pending {
                        rows: rows.rows.into_iter(),
                        ncols: fields.len(),
                    };
                    let (block, completed) = take_block(&mut p);
                    let result_id = next_result;
                    next_result += 1;
                    if !completed {
                        results.insert(result_id, p);
                    }
                    Response::ResultSet {
                        result_id,
                        fields,
                        precision,
                        block,
                        completed,
                    }
                }
                Err(e) => Response::Error(e),
            },
            (Request::Write(w), Some(s)) => match dnode.write(s, w).await {
                Ok(Output::Affected(n)) => Response::Executed {
                    affected_rows: n,
                    db: s.db.clone(),
                },
                Ok(Output::Rows(_)) => Response::Error(TaosError::internal("write produced rows")),
                Err(e) => Response::Error(e),
            },
            (Request::Fetch { result_id }, Some(_)) => match results.get_mut(&result_id) {
                Some(p) => {
                    let (block, completed) = take_block(p);
                    if completed {
                        results.remove(&result_id);
                    }
                    Response::Block { block, completed }
                }
                None => Response::Block {
                    block: Block::default(),
                    completed: true,
                },
            },
            (Request::Tmq(req), Some(s)) => match dnode.tmq_request(s, req).await {
                Ok(r) => Response::Tmq(r),
                Err(e) => Response::Error(e),
            },
            (Request::FreeResult { result_id }, Some(_)) => {
                results.remove(&result_id);
                Response::Freed
            }
        };
        wire::write_frame(&mut w, req_id, &resp).await?;
        tokio::io::AsyncWriteExt::flush(&mut w).await?;
    }
}

fn connect(
    dnode: &Coordinator,
    user: String,
    password: String,
    db: Option<String>,
    tz: Option<String>,
    app: String,
) -> Result<Session, TaosError> {
    let u = dnode
        .mnode
        .read(|c| c.users.get(&user).cloned())
        .ok_or_else(|| TaosError::new(Code::INVALID_USER, format!("Invalid user: {user}")))?;
    if !u.enable || !u.check_password(&password) {
        return Err(TaosError::of(Code::AUTH_FAILURE));
    }
    let db = db.filter(|d| !d.is_empty());
    if let Some(d) = &db {
        dnode.mnode.read(|c| c.db(d).map(|_| ()))?;
    }
    let tz = match tz.filter(|t| !t.is_empty()) {
        Some(t) => SessionTz::parse(&t)
            .ok_or_else(|| TaosError::new(Code::INVALID_PARA, format!("Invalid timezone: {t}")))?,
        None => dnode.config.timezone,
    };
    Ok(Session {
        conn_id: dnode.next_conn_id.fetch_add(1, Ordering::Relaxed),
        user: u.name.clone(),
        superuser: u.superuser,
        db,
        tz,
        app,
    })
}
