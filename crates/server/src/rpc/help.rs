//! `help.*`: the configuration every client fetches on connect, logged in or not
//! (`docs/clients.md §5`).

use tl::{enums, types};

use super::RpcCtx;
use crate::config::Config;
use crate::errors::RpcError;

pub fn get_config(ctx: &mut RpcCtx<'_>, cfg: &Config) -> Result<Vec<u8>, RpcError> {
    let public = cfg.public_address();
    let now = ctx.now as i32;
    let dc_option = |is_static: bool| -> enums::DcOption {
        types::DcOption {
            ipv6: public.is_ipv6(),
            r#static: is_static,
            id: cfg.dc_id,
            ip_address: public.ip().to_string(),
            port: i32::from(public.port()),
            ..Default::default()
        }
        .into()
    };
    let config = enums::Config::from(types::Config {
        date: now,
        expires: now + 3600,
        test_mode: false,
        this_dc: cfg.dc_id,
        dc_options: vec![dc_option(false), dc_option(true)],
        dc_txt_domain_name: String::new(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        call_receive_timeout_ms: cfg.calls.receive_timeout_ms,
        call_ring_timeout_ms: cfg.calls.ring_timeout_ms,
        call_connect_timeout_ms: cfg.calls.connect_timeout_ms,
        call_packet_timeout_ms: cfg.calls.packet_timeout_ms,
        me_url_prefix: "https://t.me/".into(),
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: cfg.dc_id,
        ..Default::default()
    });
    Ok(ctx.encode(&config))
}

pub fn get_nearest_dc(ctx: &mut RpcCtx<'_>, cfg: &Config) -> Result<Vec<u8>, RpcError> {
    let dc = cfg.dc_id;
    Ok(ctx.encode(&enums::NearestDc::from(types::NearestDc {
        country: String::new(),
        this_dc: dc,
        nearest_dc: dc,
    })))
}
