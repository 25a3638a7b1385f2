//! Admin endpoints behind `hearth user …` while the server runs:
//! `POST users` (create), `POST users/{userId}/password`,
//! `POST users/{userId}/deactivate`.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    accounts::AccountService,
    error::Result,
    http_util::{body_limited, ok_json, parse_json, percent_decode, reply},
    rooms::membership::MembershipService,
};

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
}

#[derive(Deserialize)]
struct Password {
    password: String,
}

/// What each user command does, whether the server runs or not.
pub async fn add(accounts: &AccountService, name: &str, password: String) -> Result<String> {
    Ok(accounts.register(name, Some(password)).await?.to_string())
}

pub async fn reset_password(
    accounts: &AccountService,
    name: &str,
    password: String,
) -> Result<String> {
    let user = accounts.user_id(name)?;
    accounts.set_password(&user, password).await?;
    // Whoever had the old password may hold sessions: end them.
    accounts.logout_all(&user)?;
    Ok(user.to_string())
}

/// Without a running server (`membership` none) the account is only
/// locked: leaving rooms needs the network.
pub async fn deactivate(
    accounts: &AccountService,
    membership: Option<&MembershipService>,
    name: &str,
) -> Result<String> {
    let user = accounts.user_id(name)?;
    if let Some(membership) = membership {
        membership.leave_all(&user).await?;
    }
    accounts.deactivate(&user)?;
    Ok(user.to_string())
}

pub fn routes(
    accounts: Arc<AccountService>,
    membership: Arc<MembershipService>,
) -> BoxedFilter<(Response,)> {
    let service = accounts.clone();
    let create = warp::path!("users")
        .and(warp::post())
        .and(body_limited())
        .then(move |body: Bytes| {
            let accounts = service.clone();
            async move {
                reply(
                    async {
                        let request: NewUser = parse_json(&body)?;
                        let user = add(&accounts, &request.name, request.password).await?;
                        Ok(ok_json(&json!({ "user_id": user })))
                    }
                    .await,
                )
            }
        });
    let service = accounts.clone();
    let password = warp::path!("users" / String / "password")
        .and(warp::post())
        .and(body_limited())
        .then(move |name: String, body: Bytes| {
            let accounts = service.clone();
            async move {
                reply(
                    async {
                        let request: Password = parse_json(&body)?;
                        let user =
                            reset_password(&accounts, &percent_decode(&name), request.password)
                                .await?;
                        Ok(ok_json(&json!({ "user_id": user })))
                    }
                    .await,
                )
            }
        });
    let deactivate_route = warp::path!("users" / String / "deactivate")
        .and(warp::post())
        .then(move |name: String| {
            let accounts = accounts.clone();
            let membership = membership.clone();
            async move {
                reply(
                    deactivate(&accounts, Some(&membership), &percent_decode(&name))
                        .await
                        .map(|user| ok_json(&json!({ "user_id": user }))),
                )
            }
        });
    create
        .or(password)
        .unify()
        .or(deactivate_route)
        .unify()
        .boxed()
}
