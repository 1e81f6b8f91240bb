//! Credential and certificate files are re-read when they change
//! (Kubernetes Secret rotations, cert-manager renewals), without a restart.
//! A bad new file is logged and counted by its owner, which keeps the last
//! good set.

use std::sync::Arc;
use std::time::Duration;

use crate::http::auth::Auth;
use crate::http::tls::Tls;
use crate::signal::Signal;

/// Checks the files every `every` until `stop` fires. Does nothing when no
/// file is configured.
pub fn spawn(auth: Arc<Auth>, tls: Option<Arc<Tls>>, every: Duration, mut stop: Signal) {
    if !auth.has_files() && tls.is_none() {
        return;
    }
    tokio::spawn(async move {
        while !stop.sleep(every).await {
            auth.reload_if_changed();
            if let Some(t) = &tls {
                t.reload_if_changed();
            }
        }
    });
}
