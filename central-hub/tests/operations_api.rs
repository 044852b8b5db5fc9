//! The operators' API against a hub in-process: who may do what, a work
//! order's whole life with its audit trail, scheduling against crews'
//! calendars and capacity, the asset registry, and bad requests that get a
//! 4xx with a message and change nothing.

use central_hub::auth::{Role, User};
use central_hub::config::HubConfig;
use central_hub::hub::RunningHub;
use central_hub::scheduler::{Crew, Day, Weekday};
use protocol::*;
use serde_json::{Value, json};

const OPERATOR: &str = "operator-token-for-the-api-test";
const ENGINEER: &str = "engineer-token-for-the-api-test";

mod common;
use common::event;

fn birth() -> Message {
    common::birth(&["P-7", "P-8", "P-9"])
}

/// Hub time `n` seconds after the test started (real time: the hub's
/// liveness sweep runs on the clock).
fn at(n: u64) -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }) + n * 1000
}

fn crew(id: &str, skills: &[&str], capacity: u32, days: &[Weekday]) -> Crew {
    Crew {
        id: id.into(),
        name: format!("Crew {id}"),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        daily_capacity: capacity,
        working_days: days.to_vec(),
        holidays: Vec::new(),
    }
}

const EVERY_DAY: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

async fn start(dir: &std::path::Path) -> RunningHub {
    let registry = dir.join("assets.toml");
    std::fs::write(
        &registry,
        "[[assets]]\nsite = \"north\"\nid = \"P-7\"\nkind = \"pump\"\nlocation = \"Bay 7\"\ncriticality = 5\n",
    )
    .unwrap();
    let config = HubConfig {
        users: vec![
            User {
                name: "olga".into(),
                role: Role::Operator,
                token: OPERATOR.into(),
            },
            User {
                name: "erik".into(),
                role: Role::Engineer,
                token: ENGINEER.into(),
            },
        ],
        crews: vec![
            crew("mech-a", &["mechanical"], 1, &EVERY_DAY),
            crew("inst-a", &["instrumentation"], 4, &EVERY_DAY),
            crew("sat-only", &["mechanical"], 4, &[Weekday::Sat]),
        ],
        registry: Some(registry),
        ..HubConfig::default()
    };
    common::start_hub_without_broker(dir, config).await
}

/// One request; the body is sent as JSON text exactly as given.
async fn call(
    method: &'static str,
    url: String,
    token: Option<&'static str>,
    body: Option<String>,
) -> (u16, Value) {
    let body = body.map(|b| (b.into_bytes(), "application/json"));
    common::request(method, url, token, body).await
}

async fn post(api: &str, path: &str, token: &'static str, body: Value) -> (u16, Value) {
    call(
        "POST",
        format!("{api}{path}"),
        Some(token),
        Some(body.to_string()),
    )
    .await
}

async fn get(api: &str, path: &str) -> Value {
    let (status, v) = call("GET", format!("{api}{path}"), Some(OPERATOR), None).await;
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

/// The next day from today that is (or is not) a Saturday.
fn next_day(saturday: bool) -> Day {
    let today = Day::from_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    (1..8)
        .map(|i| today.plus(i))
        .find(|d| (d.weekday() == Weekday::Sat) == saturday)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_known_tokens_get_in_and_only_engineers_edit_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path()).await;
    hub.ledger.apply(&birth(), at(1)).unwrap();
    let api = format!("http://{}", hub.http_addr);

    let (status, body) = call("GET", format!("{api}/api/work-orders"), None, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = call(
        "GET",
        format!("{api}/api/assets"),
        Some("not-a-token-anybody-has"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let me = get(&api, "/api/me").await;
    assert_eq!(me, json!({"name": "olga", "role": "operator"}));
    // The page is public (it asks for a token itself).
    assert_eq!(call("GET", format!("{api}/"), None, None).await.0, 200);

    let entry = json!({"kind": "pump", "location": "Bay 8", "criticality": 2});
    let (status, body) = call(
        "PUT",
        format!("{api}/api/assets/north/P-8"),
        Some(OPERATOR),
        Some(entry.to_string()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("engineer"));
    let (status, body) = call(
        "PUT",
        format!("{api}/api/assets/north/P-8"),
        Some(ENGINEER),
        Some(json!({"kind": "pump", "criticality": 9}).to_string()),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = call(
        "PUT",
        format!("{api}/api/assets/north/P-8"),
        Some(ENGINEER),
        Some(entry.to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let registry = get(&api, "/api/registry").await;
    let sites: Vec<(&str, u64)> = registry
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["criticality"].as_u64().unwrap(),
            )
        })
        .collect();
    // P-7 from the registry file, P-8 from the API.
    assert_eq!(sites, [("P-7", 5), ("P-8", 2)]);
    let asset = get(&api, "/api/assets/north/P-8").await;
    assert_eq!(
        (asset["location"].as_str(), asset["criticality"].as_u64()),
        (Some("Bay 8"), Some(2))
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_work_order_goes_through_its_life_and_the_audit_trail_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path()).await;
    let l = &hub.ledger;
    l.apply(&birth(), at(1)).unwrap();
    let sensor = event(
        "s1",
        "P-8",
        EventKind::SensorFault,
        DetectorState::SensorFault,
        0.0,
    );
    l.apply(&sensor, at(2)).unwrap();
    let alarm = event("a1", "P-7", EventKind::Anomaly, DetectorState::Alarm, 480.0);
    l.apply(&alarm, at(3)).unwrap();
    let api = format!("http://{}", hub.http_addr);

    // The critical asset's alarm heads the queue: 5 x 4 x 1 = 20 -> P1.
    let queue = get(&api, "/api/work-orders").await;
    let first = &queue[0];
    assert_eq!(
        (
            first["asset_id"].as_str(),
            first["priority"].as_u64(),
            first["risk"].as_f64()
        ),
        (Some("P-7"), Some(1), Some(20.0)),
        "{queue}"
    );
    assert_eq!(first["location"], "Bay 7");
    assert_eq!(first["required_skill"], "mechanical");
    assert_eq!(queue[1]["kind"], "sensor_fault");
    let id = first["id"].as_str().unwrap().to_owned();
    let path = |action: &str| format!("/api/work-orders/{id}/{action}");
    let before = get(&api, &format!("/api/work-orders/{id}")).await;

    // Bad requests: each a 4xx with a message, none changes anything.
    let bad: Vec<(u16, String)> = vec![
        (
            post(&api, &path("transition"), OPERATOR, json!({"to": "done"}))
                .await
                .0,
            "open -> done".into(),
        ),
        (
            call(
                "POST",
                format!("{api}{}", path("transition")),
                Some(OPERATOR),
                Some("{\"to\": ".into()),
            )
            .await
            .0,
            "malformed JSON".into(),
        ),
        (
            post(
                &api,
                &path("transition"),
                OPERATOR,
                json!({"to": "sleeping"}),
            )
            .await
            .0,
            "unknown status".into(),
        ),
        (
            post(
                &api,
                &path("transition"),
                OPERATOR,
                json!({"to": "dismissed"}),
            )
            .await
            .0,
            "dismissal without reason".into(),
        ),
        (
            post(
                &api,
                &path("transition"),
                OPERATOR,
                json!({"to": "acknowledged", "note": "x".repeat(100_000)}),
            )
            .await
            .0,
            "oversize body".into(),
        ),
        (
            post(
                &api,
                "/api/work-orders/WO-999999/transition",
                OPERATOR,
                json!({"to": "acknowledged"}),
            )
            .await
            .0,
            "unknown id".into(),
        ),
        (
            post(
                &api,
                &path("schedule"),
                OPERATOR,
                json!({"crew": "inst-a", "day": next_day(false)}),
            )
            .await
            .0,
            "crew without the skill".into(),
        ),
        (
            post(
                &api,
                &path("schedule"),
                OPERATOR,
                json!({"crew": "sat-only", "day": next_day(false)}),
            )
            .await
            .0,
            "a day the crew does not work".into(),
        ),
        (
            post(
                &api,
                &path("schedule"),
                OPERATOR,
                json!({"crew": "nobody", "day": next_day(false)}),
            )
            .await
            .0,
            "unknown crew".into(),
        ),
        (
            post(
                &api,
                &path("schedule"),
                OPERATOR,
                json!({"crew": "mech-a", "day": "2026-02-30"}),
            )
            .await
            .0,
            "no such date".into(),
        ),
    ];
    let statuses: Vec<u16> = bad.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        [409, 400, 422, 422, 413, 404, 422, 422, 422, 422],
        "{bad:?}"
    );
    let (_, conflict) = post(&api, &path("transition"), OPERATOR, json!({"to": "done"})).await;
    assert!(
        conflict["error"]
            .as_str()
            .unwrap()
            .contains("is open: it cannot become done"),
        "{conflict}"
    );
    let after = get(&api, &format!("/api/work-orders/{id}")).await;
    assert_eq!(before, after, "a refused request changed the work order");

    // The life of the work order.
    let (status, wo) = post(
        &api,
        &path("transition"),
        OPERATOR,
        json!({"to": "acknowledged", "note": "seen on the trend too"}),
    )
    .await;
    assert_eq!((status, wo["status"].as_str()), (200, Some("acknowledged")));
    let day = next_day(false);
    let (status, wo) = post(
        &api,
        &path("schedule"),
        OPERATOR,
        json!({"crew": "mech-a", "day": day}),
    )
    .await;
    assert_eq!(status, 200, "{wo}");
    assert_eq!(
        (
            wo["status"].as_str(),
            wo["crew"].as_str(),
            wo["scheduled_day"].as_str()
        ),
        (
            Some("scheduled"),
            Some("mech-a"),
            Some(day.to_string().as_str())
        )
    );
    // mech-a takes one inspection a day: another on that day is refused.
    let other = queue[1]["id"].as_str().unwrap();
    let (status, full) = post(
        &api,
        &format!("/api/work-orders/{other}/assign"),
        OPERATOR,
        json!({"crew": "mech-a"}),
    )
    .await;
    assert_eq!(status, 422, "a sensor fault needs instrumentation: {full}");
    l.apply(
        &event("a2", "P-9", EventKind::Anomaly, DetectorState::Alarm, 300.0),
        at(4),
    )
    .unwrap();
    let p9 = get(&api, "/api/work-orders?asset=P-9").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, full) = post(
        &api,
        &format!("/api/work-orders/{p9}/schedule"),
        OPERATOR,
        json!({"crew": "mech-a", "day": day}),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        full["error"].as_str().unwrap().contains("fully booked"),
        "{full}"
    );

    let (status, _) = post(
        &api,
        &path("transition"),
        OPERATOR,
        json!({"to": "in_progress"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&api, &path("transition"), OPERATOR, json!({"to": "done"})).await;
    assert_eq!(status, 422, "done needs findings");
    let (status, wo) = post(
        &api,
        &path("transition"),
        ENGINEER,
        json!({"to": "done", "findings": "Outer race spalled; bearing replaced."}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(wo["findings"], "Outer race spalled; bearing replaced.");
    assert_eq!(wo["sla_state"], "met");
    let (status, _) = post(&api, &path("transition"), OPERATOR, json!({"to": "open"})).await;
    assert_eq!(status, 409, "done is final");

    let audit = get(&api, &path("audit")).await;
    let trail: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["who"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("hub", "opened", "open"),
        ("olga", "transition", "acknowledged"),
        ("olga", "scheduled", "scheduled"),
        ("olga", "transition", "in_progress"),
        ("erik", "transition", "done"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(trail, expected);
    assert_eq!(audit[1]["note"], "seen on the trend too");

    // A new alarm on the same asset opens a new work order; the done one
    // stays done.
    l.apply(
        &event("a3", "P-7", EventKind::Anomaly, DetectorState::Alarm, 500.0),
        at(5),
    )
    .unwrap();
    let p7 = get(&api, "/api/work-orders?asset=P-7&status=open").await;
    assert_eq!(p7.as_array().unwrap().len(), 1);
    assert_ne!(p7[0]["id"].as_str().unwrap(), id);

    // Dismissal keeps its reason (feedback for model tuning).
    let (status, wo) = post(
        &api,
        &format!("/api/work-orders/{other}/transition"),
        OPERATOR,
        json!({"to": "dismissed", "reason": "sensor was being recalibrated"}),
    )
    .await;
    assert_eq!(
        (status, wo["dismissal_reason"].as_str()),
        (200, Some("sensor was being recalibrated"))
    );
    let dismissed = get(&api, "/api/work-orders?status=dismissed").await;
    assert_eq!(dismissed.as_array().unwrap().len(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_plans_by_priority_and_reports_what_it_cannot_place() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start(dir.path()).await;
    let l = &hub.ledger;
    l.apply(&birth(), at(1)).unwrap();
    l.apply(
        &event("a1", "P-7", EventKind::Anomaly, DetectorState::Alarm, 480.0),
        at(2),
    )
    .unwrap();
    l.apply(
        &event("a2", "P-9", EventKind::Anomaly, DetectorState::Alarm, 130.0),
        at(3),
    )
    .unwrap();
    let mut model_fault = event(
        "m1",
        "P-8",
        EventKind::ModelFault,
        DetectorState::ModelFault,
        0.0,
    );
    if let Message::Event(e) = &mut model_fault {
        e.detail = Some("input spec mismatch".into());
    }
    l.apply(&model_fault, at(4)).unwrap();
    let api = format!("http://{}", hub.http_addr);

    let (status, plan) = post(&api, "/api/schedule/plan", OPERATOR, json!({})).await;
    assert_eq!(status, 200, "{plan}");
    let planned = plan["planned"].as_array().unwrap();
    assert_eq!(planned.len(), 2, "{plan}");
    // P1 (P-7) first; mech-a (1 a day, every day) or sat-only take them.
    let p7_id = get(&api, "/api/work-orders?asset=P-7").await[0]["id"].clone();
    assert_eq!(
        planned[0]["work_order"], p7_id,
        "P1 is placed first: {plan}"
    );
    let p7 = &planned[0];
    assert!(p7["late"] == false, "{plan}");
    // Nobody has the engineering skill a model fault needs: reported.
    let late = plan["late"].as_array().unwrap();
    assert_eq!(late.len(), 1, "{plan}");
    assert!(
        late[0]["reason"].as_str().unwrap().contains("engineering"),
        "{plan}"
    );
    assert!(late[0]["planned_day"].is_null());

    let schedule = get(&api, "/api/schedule?days=14").await;
    let bookings = schedule["bookings"].as_array().unwrap();
    assert_eq!(bookings.len(), 2, "{schedule}");
    assert!(bookings.iter().all(|b| b["status"] == "scheduled"));
    assert_eq!(schedule["days"].as_array().unwrap().len(), 14);
    let (status, _) = call(
        "GET",
        format!("{api}/api/schedule?days=0"),
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, 422);
    for (query, expected) in [
        ("/api/schedule?from=2026-13-01", 400),
        ("/api/work-orders?sort=sideways", 422),
        ("/api/work-orders?status=sleeping", 422),
        ("/api/work-orders?colour=red", 400),
    ] {
        let (status, body) = call("GET", format!("{api}{query}"), Some(OPERATOR), None).await;
        assert_eq!(status, expected, "{query}: {body}");
        assert!(body["error"].is_string(), "{query}: {body}");
    }
    // Planning is audited under the caller's name.
    let audit = get(&api, "/api/audit").await;
    let by_olga = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["who"] == "olga" && e["action"] == "scheduled")
        .count();
    assert_eq!(by_olga, 2);
    // Health history was kept for the assets that changed.
    let history = get(&api, "/api/assets/north/P-7/history").await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["state"] == "alarm"),
        "{history}"
    );
    hub.stop().await;
}
