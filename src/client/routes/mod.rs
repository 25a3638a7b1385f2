//! Client listener routes, one file per spec endpoint (or per endpoint
//! family sharing one handler).

mod account;
mod account_data;
mod appservice_ping;
mod capabilities;
mod context;
mod create_room;
mod delayed_events;
mod devices;
mod directory;
mod event;
mod events;
mod filter;
mod hierarchy;
mod initial_sync;
mod joined_rooms;
mod joining;
mod keys;
mod knocking;
mod leaving;
mod login;
mod logout;
mod media;
mod members;
mod membership;
mod messages;
mod notifications;
mod openid;
mod presence;
mod profile;
mod public_rooms;
mod pushers;
mod pushrules;
mod receipt;
mod redact;
mod refresh;
mod register;
mod relations;
mod report;
mod room_aliases;
mod room_keys;
mod room_summary;
mod search;
mod send;
mod send_to_device;
mod sliding_sync;
mod state;
mod sync;
mod tags;
mod thirdparty;
mod threads;
mod threepid;
mod timestamp_to_event;
mod typing;
mod upgrade;
mod user_directory;
mod versions;
mod voip;
mod whoami;

use warp::Filter;

use super::{Route, Services};

/// Every client-server route.
pub fn routes(services: Services) -> Route {
    let all: Vec<Route> = vec![
        versions::route(),
        login::routes(services.clone()),
        logout::routes(services.clone()),
        whoami::route(services.clone()),
        register::routes(services.clone()),
        capabilities::route(services.clone()),
        presence::routes(services.clone()),
        pushrules::routes(services.clone()),
        filter::routes(services.clone()),
        hierarchy::route(services.clone()),
        account::routes(services.clone()),
        account_data::routes(services.clone()),
        profile::routes(services.clone()),
        sync::route(services.clone()),
        sliding_sync::route(services.clone()),
        events::route(services.clone()),
        initial_sync::routes(services.clone()),
        create_room::route(services.clone()),
        directory::routes(services.clone()),
        public_rooms::routes(services.clone()),
        joining::routes(services.clone()),
        leaving::routes(services.clone()),
        membership::routes(services.clone()),
        joined_rooms::route(services.clone()),
        send::route(services.clone()),
        state::routes(services.clone()),
        event::route(services.clone()),
        context::route(services.clone()),
        members::routes(services.clone()),
        messages::route(services.clone()),
        openid::route(services.clone()),
        typing::route(services.clone()),
        user_directory::route(services.clone()),
        redact::route(services.clone()),
        keys::routes(services.clone()),
        knocking::route(services.clone()),
        send_to_device::route(services.clone()),
        devices::routes(services.clone()),
        media::routes(services.clone()),
        room_keys::routes(services.clone()),
        tags::routes(services.clone()),
        room_aliases::route(services.clone()),
        thirdparty::routes(services.clone()),
        threepid::routes(services.clone()),
        timestamp_to_event::route(services.clone()),
        voip::route(services.clone()),
        report::route(services.clone()),
        room_summary::route(services.clone()),
        relations::route(services.clone()),
        threads::route(services.clone()),
        notifications::route(services.clone()),
        pushers::routes(services.clone()),
        search::route(services.clone()),
        upgrade::route(services.clone()),
        refresh::route(services.clone()),
        delayed_events::routes(services.clone()),
        appservice_ping::route(services.clone()),
        receipt::routes(services),
    ];
    all.into_iter()
        .reduce(|a, b| a.or(b).unify().boxed())
        .unwrap_or_else(|| {
            warp::any()
                .and_then(|| async { Err(warp::reject::not_found()) })
                .boxed()
        })
}
