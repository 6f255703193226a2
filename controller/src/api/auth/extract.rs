//! What the authentication layer hands a handler through the request's extensions:
//! the admitted caller.

use crate::api::auth::roles::Caller;
use tonic::{Request, Status};

/// The caller the authentication layer admitted (every method but the health check has one).
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}
