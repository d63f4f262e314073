//! The read side of the maintenance API (to be written).

use dbagent_sdk::{Error, Params, Request, Response};

pub fn instance(_: &Request, _: &Params) -> Result<Response, Error> {
    Err(Error::new(501, "not implemented yet"))
}

pub fn database(_: &Request, _: &Params) -> Result<Response, Error> {
    Err(Error::new(501, "not implemented yet"))
}

pub fn schema(_: &Request, _: &Params) -> Result<Response, Error> {
    Err(Error::new(501, "not implemented yet"))
}

pub fn table(_: &Request, _: &Params) -> Result<Response, Error> {
    Err(Error::new(501, "not implemented yet"))
}
