//! Connecting: the client identity (certificate store), the endpoint with its security, the
//! user identity, timeouts, and a watcher of the session's event loop.
//!
//! The client certificate and key are made on first use and kept in the PKI directory
//! (`<pki>/own/cert.der`, `<pki>/private/private.pem`), so a server operator can trust that one
//! certificate once; server certificates land in `<pki>/trusted` (or `<pki>/rejected` when
//! `trust_server=false` and the operator has not put them in `trusted`). By default the PKI
//! directory is `opcua-pki` beside the task directories: one client identity per taosx or agent.

use super::source::{Auth, OpcUaSource, SecurityMode};
use super::OpcUaError;
use crate::commit::TaskStats;
use futures_util::StreamExt;
use opcua::client::{Client, ClientBuilder, IdentityToken, Password, Session, SessionPollResult};
use opcua::types::{MessageSecurityMode, StatusCode};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Application URI of the client (also in its certificate).
pub const APPLICATION_URI: &str = "urn:taosx:opcua-client";

/// Two tasks starting together must not both create the client key pair.
static PKI_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The PKI directory: the `pki` option, else `opcua-pki` beside the task's archive directory.
pub fn pki_dir(src: &OpcUaSource, archive_dir: &Option<PathBuf>) -> PathBuf {
    if let Some(p) = &src.pki {
        return PathBuf::from(p);
    }
    match archive_dir.as_deref().and_then(Path::parent) {
        Some(parent) => parent.join("opcua-pki"),
        None => PathBuf::from("opcua-pki"),
    }
}

/// Does this source need the client's own certificate (secure channel or X.509 identity)?
fn needs_own_cert(src: &OpcUaSource) -> bool {
    src.security_mode != SecurityMode::None
        || matches!(src.auth, Auth::Certificate { cert: None, .. })
}

/// The client, with its certificate store (made and filled on first use).
pub async fn make_client(src: &OpcUaSource, pki: &Path) -> Result<Client, OpcUaError> {
    // Made even when this task does not need it (about a second, once per PKI directory): the
    // operator can trust it before switching a task to a secure mode, and the stack does not
    // log errors about a missing certificate on every connection.
    let builder = ClientBuilder::new()
        .application_name("taosx")
        .application_uri(APPLICATION_URI)
        .product_uri("urn:taosx")
        .pki_dir(pki)
        .create_sample_keypair(true)
        .trust_server_certs(src.trust_server)
        .verify_server_certs(!src.trust_server)
        .request_timeout(Duration::from_millis(src.request_timeout_ms))
        // One retry of the first connection; later losses end the session (see `connect`)
        // and the collector makes a new one, on the next endpoint, with backoff.
        .session_retry_limit(1)
        .session_retry_initial(Duration::from_millis(500))
        .session_retry_max(Duration::from_secs(4))
        .keep_alive_interval(Duration::from_secs(5))
        // The stack's defaults (5 chunks, 1000 array elements) are too small for a publish
        // response of thousands of changes or a folder of thousands of variables.
        .max_chunk_count(4096)
        .max_message_size(256 << 20)
        .max_array_length(1 << 20)
        .session_timeout(60_000);
    let _guard = PKI_LOCK.lock().await;
    let pki_shown = pki.display().to_string();
    let client = tokio::task::spawn_blocking(move || builder.client())
        .await
        .map_err(|e| OpcUaError::Setup(format!("client setup: {e}")))?
        .map_err(|e| OpcUaError::Setup(format!("client setup: {}", e.join("; "))))?;
    if needs_own_cert(src) && !pki.join("own/cert.der").exists() {
        return Err(OpcUaError::Setup(format!(
            "cannot create the client certificate in {pki_shown} (see the log)"
        )));
    }
    Ok(client)
}

fn identity(src: &OpcUaSource, pki: &Path) -> Result<IdentityToken, OpcUaError> {
    Ok(match &src.auth {
        Auth::Anonymous => IdentityToken::Anonymous,
        Auth::UserName { user, password } => {
            IdentityToken::new_user_name(user.clone(), Password::new(password.clone()))
        }
        Auth::Certificate { cert, key } => {
            let cert = cert
                .as_ref()
                .map(PathBuf::from)
                .unwrap_or_else(|| pki.join("own/cert.der"));
            let key = key
                .as_ref()
                .map(PathBuf::from)
                .unwrap_or_else(|| pki.join("private/private.pem"));
            IdentityToken::new_x509_path(&cert, &key).map_err(|e| {
                OpcUaError::Setup(format!(
                    "user certificate {} / {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
    })
}

/// A connected session and the task that drives it (it ends when the session gives up).
pub struct Connected {
    pub session: Arc<Session>,
    pub driver: tokio::task::JoinHandle<StatusCode>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connect to `url` within the connect timeout, and watch the session's events.
pub async fn connect(
    client: &mut Client,
    src: &OpcUaSource,
    pki: &Path,
    url: &str,
    stats: Arc<TaskStats>,
    task: &str,
) -> Result<Connected, OpcUaError> {
    let fail = |msg: String| OpcUaError::Connect {
        endpoint: url.to_string(),
        msg,
    };
    let mode = match src.security_mode {
        SecurityMode::None => MessageSecurityMode::None,
        SecurityMode::Sign => MessageSecurityMode::Sign,
        SecurityMode::SignAndEncrypt => MessageSecurityMode::SignAndEncrypt,
    };
    let token = identity(src, pki)?;
    let timeout = Duration::from_millis(src.connect_timeout_ms);
    let endpoint = (url, src.security_policy.as_str(), mode);
    let (session, event_loop) = tokio::time::timeout(
        timeout,
        client.connect_to_matching_endpoint(endpoint, token),
    )
    .await
    .map_err(|_| fail(format!("no endpoint list within {timeout:?}")))?
    .map_err(|e| fail(e.to_string()))?;
    let (name, st) = (task.to_string(), stats.clone());
    let driver = tokio::spawn(async move {
        let events = event_loop.enter();
        tokio::pin!(events);
        loop {
            match events.next().await {
                None => return StatusCode::Good,
                Some(Err(e)) => {
                    st.connected.store(false, Ordering::Relaxed);
                    return e;
                }
                Some(Ok(SessionPollResult::ConnectionLost(e))) => {
                    st.connected.store(false, Ordering::Relaxed);
                    st.error(format!("OPC-UA connection lost: {e}"));
                    tracing::warn!(task = %name, error = %e, "OPC-UA connection lost; reconnecting");
                }
                Some(Ok(SessionPollResult::Reconnected(how))) => {
                    st.connected.store(true, Ordering::Relaxed);
                    tracing::info!(task = %name, ?how, "OPC-UA session (re)connected");
                }
                Some(Ok(SessionPollResult::ReconnectFailed(e))) => {
                    tracing::debug!(task = %name, error = %e, "OPC-UA reconnect failed");
                }
                Some(Ok(_)) => {}
            }
        }
    });
    let mut connected = Connected { session, driver };
    let established = tokio::time::timeout(timeout, async {
        tokio::select! {
            ok = connected.session.wait_for_connection() => Ok(ok),
            // The driver gives up first when the server refuses the session (bad login).
            status = &mut connected.driver => Err(status),
        }
    })
    .await;
    match established {
        Ok(Err(status)) => Err(fail(format!(
            "the session could not be established: {}",
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string())
        ))),
        Ok(Ok(true)) => {
            // After a lost connection the stack would reactivate the old session by its
            // token. Servers that number tokens from a counter (asyncua) hand a restarted
            // server's token to another client, and the stack then lands in that client's
            // session. A fresh session per connection (built by the collector, which also
            // moves on to the next endpoint) is predictable: the driver ends on a loss.
            connected.session.disable_reconnects();
            stats.connected.store(true, Ordering::Relaxed);
            Ok(connected)
        }
        Ok(Ok(false)) => Err(fail("the session could not be established".into())),
        Err(_) => Err(fail(format!("no session within {timeout:?}"))),
    }
}
