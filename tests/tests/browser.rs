//! The operators' page in a real headless Chromium against the real hub
//! (`central-hub demo`: broker, hub and two simulated gateways, one pump
//! developing a bearing fault). An operator opens the page with the token
//! the demo prints, finds the faulty pump's work order at the top of the
//! queue, opens it (evidence plot drawn), and by clicking alone
//! acknowledges it, schedules it for a crew and day, starts and closes it
//! with findings; the API and its audit trail must say so, naming the
//! operator. Without a token the API answers 401, and the page with a bad
//! token asks to sign in. The Rollouts tab renders (empty or a table, and a
//! rollout's detail).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use system_tests::webdriver::Browser;
use system_tests::{Process, bin, free_port, wait_until};

const ACTIVE: &str = "open,acknowledged,scheduled,in_progress";

/// The hub's API, asked with or without the operator's token.
struct Api {
    base: String,
    token: String,
    http: ureq::Agent,
}

impl Api {
    fn get_as(&self, path: &str, token: Option<&str>) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url);
        if let Some(t) = token {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_json()
            .map_err(|e| format!("GET {url}: {status}, body: {e}"))?;
        Ok((status, body))
    }

    /// GET with the token; anything but 200 is an error.
    fn get(&self, path: &str) -> Result<Value, String> {
        match self.get_as(path, Some(&self.token))? {
            (200, body) => Ok(body),
            (status, body) => Err(format!("GET {path}: {status} {body}")),
        }
    }
}

/// The `name` in `name: value` on a line of the demo's output.
fn printed(log: &str, name: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let rest = line.split_once(&format!("{name}:"))?.1;
        rest.split_whitespace().next().map(str::to_owned)
    })
}

/// Days since 1970-01-01 as "YYYY-MM-DD" (proleptic Gregorian, UTC).
fn iso_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The working days of `crew` after today (UTC), soonest first.
fn working_days(crew: &Value, count: usize) -> Vec<String> {
    // 1970-01-01 was a Thursday.
    const NAMES: [&str; 7] = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"];
    let today = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400) as i64;
    let listed = |field: &str, v: &str| {
        crew[field]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == v))
    };
    (today + 1..today + 400)
        .map(|d| (iso_day(d), NAMES[d.rem_euclid(7) as usize]))
        .filter(|(day, name)| listed("working_days", name) && !listed("holidays", day))
        .map(|(day, _)| day)
        .take(count)
        .collect()
}

/// The first active work order, as the API orders them.
fn top_of_queue(api: &Api) -> Result<Option<Value>, String> {
    let orders = api.get(&format!("/api/work-orders?status={ACTIVE}"))?;
    Ok(orders.as_array().and_then(|a| a.first()).cloned())
}

/// Waits until the API shows work order `id` in `status` and the page's
/// detail shows that status too (its actions redrawn), failing at once if
/// the page shows an error for the action.
fn wait_for_order(api: &Api, browser: &Browser, id: &str, status: &str) -> Value {
    wait_until(status, Duration::from_secs(30), || {
        if browser.is_displayed("#wo-error") {
            panic!("the page shows an error: {}", browser.text("#wo-error"));
        }
        let wo = api.get(&format!("/api/work-orders/{id}"))?;
        let shown = browser.execute(
            "return document.querySelector('#wo-detail').dataset.status || null",
            vec![],
        );
        Ok((wo["status"] == status && shown == status).then_some(wo))
    })
}

#[test]
fn browser_operator_acknowledges_schedules_and_closes_a_work_order_by_clicking() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let base = format!("http://127.0.0.1:{http}");
    let data = dir.path().join("demo-data");
    let mut demo = Process::start(
        "demo",
        &bin("central-hub"),
        &[
            "demo",
            "--http",
            &format!("127.0.0.1:{http}"),
            "--for",
            "600",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    let token = wait_until("the demo's operator token", Duration::from_secs(30), || {
        Ok(printed(&demo.log(), "operator token"))
    });
    let api = Api {
        base: base.clone(),
        token: token.clone(),
        http: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into(),
    };
    let me = wait_until("GET /api/me", Duration::from_secs(30), || {
        api.get("/api/me").map(Some)
    });
    let operator = me["name"].as_str().expect("a name").to_owned();
    assert_eq!(me["role"], "operator", "{me}");

    // The API alone: no token, no answer.
    let (status, body) = api.get_as("/api/work-orders", None).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");

    let first = wait_until(
        "an active anomaly work order at the top of the queue",
        Duration::from_secs(180),
        || {
            Ok(top_of_queue(&api)?.filter(|wo| {
                wo["kind"] == "anomaly"
                    && wo["status"] == "open"
                    && wo["priority"].as_u64() <= Some(2)
            }))
        },
    );
    eprintln!(
        "top of the queue: {} P{} {} on {} ({})",
        first["id"], first["priority"], first["kind"], first["asset_id"], first["reason"]
    );

    let browser = Browser::start(dir.path());
    browser.goto(&format!("{base}/#token={token}"));
    browser.wait_for_text("#me", &operator, Duration::from_secs(20));
    let href = browser.execute("return location.href", vec![]);
    assert!(
        !href.as_str().unwrap().contains("token"),
        "token left in the address bar: {href}"
    );

    // The queue shows the API's most urgent active work order first.
    let id = wait_until(
        "the page's first row = the API's first",
        Duration::from_secs(30),
        || {
            let top = top_of_queue(&api)?.ok_or("no active work order")?;
            let row = browser.execute(
                "const tr = document.querySelector('#queue tbody tr[data-wo]');
             return tr ? [tr.dataset.wo, tr.innerText] : null;",
                vec![],
            );
            let (Some(shown), Some(text)) = (row[0].as_str(), row[1].as_str()) else {
                return Ok(None);
            };
            let ok = top["id"] == shown
                && top["kind"] == "anomaly"
                && top["priority"].as_u64() <= Some(2)
                && text.contains(&format!("P{}", top["priority"]));
            Ok(ok.then(|| shown.to_owned()))
        },
    );
    let wo = api.get(&format!("/api/work-orders/{id}")).unwrap();
    let asset = wo["asset_id"].as_str().unwrap().to_owned();

    // Its detail: the evidence plotted, the asset's health too.
    browser.click(&format!("#queue tr[data-wo=\"{id}\"]"));
    browser.wait_for_text("#wo-detail-id", &id, Duration::from_secs(20));
    browser.wait_for_text(
        "#wo-summary",
        wo["model"]["id"].as_str().unwrap(),
        Duration::from_secs(20),
    );
    wait_until("the score plot drawn", Duration::from_secs(20), || {
        let lines = browser.execute(
            "return document.querySelectorAll('#wo-detail svg.plot-score polyline, #wo-detail svg.plot-score path').length",
            vec![],
        );
        Ok((lines.as_u64() > Some(0)).then_some(()))
    });
    browser.find("#wo-detail svg.plot-health");
    browser.find("#wo-detail svg.plot-score line.threshold");

    // Acknowledge.
    browser.click("#act-acknowledge");
    wait_for_order(&api, &browser, &id, "acknowledged");

    // Schedule: the crews offered are those with the skill; the day offered
    // is the chosen crew's next working day; take the one after.
    let crews = api.get("/api/crews").unwrap();
    let skill = wo["required_skill"].as_str().unwrap();
    let able: Vec<&Value> = crews
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["skills"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == skill))
        })
        .collect();
    let offered = wait_until("crews offered", Duration::from_secs(20), || {
        let v = browser.execute(
            "return [...document.querySelectorAll('#schedule-crew option')].map(o => o.value).filter(v => v)",
            vec![],
        );
        let ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        Ok((!ids.is_empty()).then_some(ids))
    });
    let able_ids: Vec<&str> = able.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(offered, able_ids, "crews with the skill {skill}: {crews}");
    let crew = able.last().unwrap();
    let crew_id = crew["id"].as_str().unwrap();
    browser.select_value("#schedule-crew", crew_id);
    let days = working_days(crew, 2);
    let default_day = browser.execute(
        "return document.querySelector('#schedule-day').value",
        vec![],
    );
    assert_eq!(
        default_day,
        days[0].as_str(),
        "the next working day of {crew}"
    );
    let day = days[1].as_str();
    browser.select_value("#schedule-day", day);
    browser.click("#act-schedule");
    let scheduled = wait_for_order(&api, &browser, &id, "scheduled");
    assert_eq!(scheduled["crew"], crew_id, "{scheduled}");
    assert_eq!(scheduled["scheduled_day"], day, "{scheduled}");

    // The other views: the booking on the schedule, the asset, the gateways.
    browser.click("#tab-schedule");
    browser.wait_for_text("#schedule-grid", &id, Duration::from_secs(20));
    browser.click("#tab-assets");
    browser.wait_for_text("#assets tbody", &asset, Duration::from_secs(20));
    browser.click("#tab-gateways");
    browser.wait_for_text("#gateways tbody", "online", Duration::from_secs(20));
    browser.click("#tab-queue");

    // Start, then close with findings.
    browser.click("#act-start");
    wait_for_order(&api, &browser, &id, "in_progress");
    let findings = "Outer race spalled; bearing replaced, vibration back to zone A.";
    browser.type_into("#done-findings", findings);
    browser.click("#act-done");
    let done = wait_for_order(&api, &browser, &id, "done");
    assert_eq!(done["findings"], findings, "{done}");
    browser.wait_for_text("#wo-audit", "in progress → done", Duration::from_secs(20));

    // The audit trail names the operator for every step.
    let audit = api.get(&format!("/api/work-orders/{id}/audit")).unwrap();
    let steps: Vec<(Value, Value, Value)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["to"].is_null())
        .map(|a| (a["from"].clone(), a["to"].clone(), a["who"].clone()))
        .collect();
    let expected = [
        ("open", "acknowledged"),
        ("acknowledged", "scheduled"),
        ("scheduled", "in_progress"),
        ("in_progress", "done"),
    ];
    let mut rest = steps.iter();
    for (from, to) in expected {
        let step = rest
            .find(|(_, t, _)| t == to)
            .unwrap_or_else(|| panic!("no transition to {to} in order in {audit}"));
        assert!(
            step.0 == from || step.0.is_null(),
            "{to} from {}: {audit}",
            step.0
        );
        assert_eq!(step.2, json!(operator), "who moved it to {to}: {audit}");
    }

    // A bad token: the page asks to sign in, and the right one lets in.
    browser.goto("about:blank");
    browser.goto(&format!("{base}/#token=not-a-token"));
    wait_until("the sign-in form", Duration::from_secs(20), || {
        Ok((browser.is_displayed("#token-input") && !browser.is_displayed("#app")).then_some(()))
    });
    assert!(
        browser.is_displayed("#signin-error"),
        "no reason shown for the refusal"
    );
    browser.type_into("#token-input", &token);
    browser.click("#sign-in");
    browser.wait_for_text("#me", &operator, Duration::from_secs(20));

    // An engineer starts the rollout the demo suggests; the operator's
    // rollouts view lists it and opens its detail, without the engineers'
    // buttons. (The empty state is checked too when nothing was started.)
    let engineer = printed(&demo.log(), "engineer token").expect("the engineer token");
    let started = ureq::post(&format!("{base}/api/rollouts"))
        .header("Authorization", format!("Bearer {engineer}"))
        .send_json(serde_json::json!({
            "model": "pump-anomaly", "version": "2.0.1",
            "target": {"asset_kind": "pump"}, "waves": [1, "100%"], "shadow_s": 5,
        }))
        .map(|mut r| r.body_mut().read_json::<Value>().unwrap_or(Value::Null));
    let started_id = started
        .as_ref()
        .ok()
        .and_then(|r| r["id"].as_str().map(str::to_owned));
    assert!(
        started_id.is_some(),
        "the rollout did not start: {started:?}"
    );
    browser.click("#tab-rollouts");
    let shown = wait_until("the rollouts view", Duration::from_secs(20), || {
        if browser.is_displayed("#rollouts-error") {
            return Err(format!(
                "the page shows an error: {}",
                browser.text("#rollouts-error")
            ));
        }
        if browser.is_displayed("#rollouts-empty") {
            return Ok(Some(None));
        }
        if browser.is_displayed("#rollouts tbody tr[data-rollout]") {
            let first = browser.execute(
                "return document.querySelector('#rollouts tr[data-rollout]').dataset.rollout",
                vec![],
            );
            return Ok(Some(first.as_str().map(str::to_owned)));
        }
        Ok(None)
    });
    assert_eq!(
        shown, started_id,
        "the page does not list the rollout started"
    );
    let rollouts = match shown {
        None => {
            let text = browser.text("#rollouts-empty");
            assert!(text.contains("No rollouts yet"), "{text}");
            assert!(text.contains("central-hub rollout start"), "{text}");
            "no rollouts yet".to_owned()
        }
        Some(rollout) => {
            let listed = api
                .get(&format!("/api/rollouts/{rollout}"))
                .unwrap_or_else(|e| panic!("the page lists {rollout}, the API: {e}"));
            browser.click(&format!("#rollouts tr[data-rollout=\"{rollout}\"]"));
            browser.wait_for_text("#rollout-detail", &rollout, Duration::from_secs(20));
            let version = listed["spec"]["version"].as_str().unwrap_or_default();
            browser.wait_for_text("#rollout-summary", version, Duration::from_secs(20));
            for button in ["#rollout-pause", "#rollout-resume", "#rollout-rollback"] {
                assert!(
                    !browser.is_displayed(button),
                    "{button} shown to an operator"
                );
            }
            format!("rollout {rollout} shown")
        }
    };

    drop(browser);
    let status = demo
        .terminate(Duration::from_secs(30))
        .expect("demo stops on SIGTERM");
    assert!(status.success(), "{status:?}");
    println!(
        "browser: work order {id} acknowledged, scheduled and closed by clicking; rollouts view: {rollouts}"
    );
}
