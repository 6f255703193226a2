//! What the authentication layer hands a handler through the request's extensions:
//! the admitted caller and the open-stream permit.

use crate::api::auth::layer::StreamPermit;
use crate::api::auth::roles::Caller;
use tonic::{Request, Status};

/// The caller the authentication layer admitted (every method but the health check has one).
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// The open-stream permit the authentication layer took for a server stream.
pub(crate) fn stream_permit<T>(request: &mut Request<T>) -> Option<StreamPermit> {
    request.extensions_mut().remove::<StreamPermit>()
}

