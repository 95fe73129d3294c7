//! The incoming pipeline shared by port 25 and `POST /mxdeliv` (spec §6.2–6.4):
//! encryption policy, origin check (DKIM), sender reset, header stripping,
//! durable local delivery.

use std::sync::Arc;

use crate::relay::{offload, Ctx};

/// Accept `raw` from another server for local `rcpts`. `Err` is the SMTP
/// reply line to send (or to put in the `/mxdeliv` 400 body). The CPU
/// stages of a big message run on the cpu thread ([`offload`]).
pub async fn accept(
    ctx: &Ctx,
    raw: Vec<u8>,
    mail_from: &str,
    rcpts: &[String],
) -> Result<(), String> {
    let raw = Arc::new(raw);
    let size = raw.len();
    let checked = {
        let (raw, from, rcpts) = (raw.clone(), mail_from.to_string(), rcpts.to_vec());
        offload(size, move || {
            crate::policy::check_incoming(&raw, &from, &rcpts)
        })
        .await
    };
    let ok = match checked {
        Ok(ok) => ok,
        Err(r) => {
            log::info!("incoming: rejected with {}", r.code);
            return Err(r.line());
        }
    };
    // Origin: strict DKIM alignment for named domains; IP-literal senders are
    // exempt (spec §6.2 step 5).
    if !ok.from_domain.starts_with('[') {
        verify_origin(ctx, raw.clone(), &ok.from_domain).await?;
    }
    // The envelope sender is not stored (we keep no Return-Path); with
    // reset_sender a bounce would go nowhere, which is the point (§6.2 step 3).
    let _ = ok.reset_sender;
    let clean = offload(size, move || crate::policy::strip_incoming(&raw)).await;
    crate::relay::delivery::local(ctx, &clean, mail_from, rcpts).await
}

/// Most key lookups per message (bounded work for hostile input).
const MAX_KEY_LOOKUPS: usize = 8;

/// Strict DKIM alignment (spec §6.2 step 5): a valid signature with
/// `d=` equal to the From domain. Key records come from our resolver (which
/// caches them by TTL).
pub async fn verify_origin(ctx: &Ctx, raw: Arc<Vec<u8>>, from_domain: &str) -> Result<(), String> {
    let mut keys = std::collections::HashMap::new();
    for (sel, dom) in crate::dkim::key_queries(&raw, from_domain)
        .into_iter()
        .take(MAX_KEY_LOOKUPS)
    {
        if let Ok(records) = ctx.resolver.txt(&format!("{sel}._domainkey.{dom}")).await {
            // Several TXT records may exist; use the one that parses as a key.
            if let Some(r) = records
                .into_iter()
                .find(|r| crate::dkim::parse_key_record(r).is_ok())
            {
                keys.insert((sel, dom), r);
            }
        }
    }
    let dom = from_domain.to_string();
    let verdict = offload(raw.len(), move || {
        crate::dkim::check_aligned_with(&raw, &dom, &keys).reply()
    })
    .await;
    match verdict {
        None => Ok(()),
        Some((code, text)) => {
            log::info!("incoming: rejected with {code} (DKIM)");
            Err(format!("{code} {text}"))
        }
    }
}

/// Prepend our DKIM signature (spec §5.3) when we have a key (named domains).
pub fn dkim_sign(ctx: &Ctx, msg: Vec<u8>) -> Vec<u8> {
    match &ctx.dkim_key {
        Some(key) => sign_with(key, &ctx.cfg.mail_domain, &ctx.cfg.dkim_selector, msg),
        None => msg,
    }
}

/// [`dkim_sign`] without the context, for the cpu thread.
pub fn sign_with(
    key: &crate::dkim::SigningKey,
    domain: &str,
    selector: &str,
    msg: Vec<u8>,
) -> Vec<u8> {
    let now = crate::clock::now_secs() as u64;
    match crate::dkim::sign(&msg, domain, selector, key, now) {
        Ok(h) => {
            let mut out = h.into_bytes();
            out.extend_from_slice(&msg);
            out
        }
        Err(e) => {
            log::error!("DKIM signing failed: {e}");
            msg
        }
    }
}
