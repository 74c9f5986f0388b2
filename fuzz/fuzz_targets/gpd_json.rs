//! What GPD clients send to `/gpd/v1`, `/gpd/v2`, `/gpd/v3` and the massive
//! upload: the same bytes read as each request body of `incasso-gpd`, and
//! each body that parses mapped onto debt positions, as the server's
//! handlers do before any rule of core's (which `position_json` fuzzes).
//! Where a mapping succeeds, the answers are built from it and written, and
//! the round trips that must hold are checked:
//! - v1: wire -> position -> wire -> position gives the same position;
//! - v3: a position's v3 answer, read back as a request, gives a position
//!   whose v3 answer is the same (v3 regroups the options by due date, so
//!   the first position's options may come back in another order).
#![no_main]

use chrono::{DateTime, TimeZone, Utc};
use incasso_core::position::DebtPosition;
use incasso_gpd::{v1, v2, v3};
use libfuzzer_sys::fuzz_target;

const ENTE: &str = "80000130585";

fuzz_target!(|data: &[u8]| {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();

    if let Ok(model) = serde_json::from_slice::<v1::PaymentPositionModel>(data)
        && let Ok(position) = model.into_domain()
    {
        check_v1(&position, now);
    }
    if let Ok(body) = serde_json::from_slice::<v2::MultiplePaymentPositionModel>(data)
        && let Ok(positions) = v2::positions_of(body)
    {
        for position in &positions {
            check_v1(position, now);
        }
    }
    if let Ok(model) = serde_json::from_slice::<v3::PaymentPositionModelV3>(data)
        && let Ok((position, origins)) = model.into_domain()
    {
        // Core's errors name options as `paymentOption[n]`; one past the
        // last must be left as it is.
        for n in 0..=position.options.len() {
            let _ = origins.rewrite(&format!("paymentOption[{n}].transfer[0]: x"));
        }
        check_v3(&position, now);
    }
    let _ = serde_json::from_slice::<v1::AlreadyPaidModel>(data);
    let _ = serde_json::from_slice::<v1::UpdateIbanModel>(data);
    let _ = serde_json::from_slice::<v2::MultipleIupdModel>(data);
});

fn check_v1(position: &DebtPosition, now: DateTime<Utc>) {
    let answer = v1::PaymentPositionModel::from_domain(position, now);
    serde_json::to_vec(&answer).expect("a v1 answer is always written");
    let again = answer
        .into_domain()
        .expect("v1's own answer maps back onto a position");
    assert_eq!(&again, position, "v1 round trip");
    serde_json::to_vec(&v1::base_response(ENTE, position, now))
        .expect("a v1 get answer is always written");
}

fn check_v3(position: &DebtPosition, now: DateTime<Utc>) {
    let answer = v3::PaymentPositionModelV3::from_domain(position, now);
    let written = serde_json::to_value(&answer).expect("a v3 answer is always written");
    serde_json::to_vec(&v3::response(ENTE, position, now))
        .expect("a v3 get answer is always written");
    let (again, _) = answer
        .into_domain()
        .expect("v3's own answer maps back onto a position");
    let rewritten = serde_json::to_value(v3::PaymentPositionModelV3::from_domain(&again, now))
        .expect("a v3 answer is always written");
    assert_eq!(rewritten, written, "v3 round trip");
}
