use super::*;

fn d(s: &str) -> Day {
    Day::parse(s).unwrap()
}

/// Monday.
fn today() -> Day {
    d("2026-11-23")
}

fn crew(id: &str, skills: &[&str], daily_capacity: u32) -> Crew {
    let skills = skills.iter().map(|s| s.to_string()).collect();
    let (working_days, holidays) = (default_working_days(), vec![]);
    let name = format!("Crew {id}");
    Crew {
        id: id.into(),
        name,
        skills,
        daily_capacity,
        working_days,
        holidays,
    }
}

fn mech(id: &str, daily_capacity: u32) -> Crew {
    crew(id, &["mechanical"], daily_capacity)
}

fn job(work_order: &str, site: &str, skill: &str, priority: u8, due: Day) -> Job {
    let (work_order, site, skill) = (work_order.into(), site.into(), skill.into());
    Job {
        work_order,
        site,
        skill,
        priority,
        due,
        created_at_ms: 0,
    }
}

/// A mechanical job of priority 1.
fn mjob(work_order: &str, site: &str, due: Day) -> Job {
    job(work_order, site, "mechanical", 1, due)
}

fn booking(work_order: &str, crew: &str, day: Day, site: &str) -> Booking {
    let (work_order, crew, site) = (work_order.into(), crew.into(), site.into());
    Booking {
        work_order,
        crew,
        day,
        site,
    }
}

/// Plans from [`today`] for 10 days.
fn run(crews: &[Crew], bookings: &[Booking], jobs: &[Job]) -> Plan {
    plan(crews, bookings, jobs, today(), 10)
}

/// "work-order crew day" of every planned job, in plan order.
fn placed(plan: &Plan) -> Vec<String> {
    let p = plan.planned.iter();
    p.map(|p| format!("{} {} {}", p.work_order, p.crew, p.day))
        .collect()
}

fn days(plan: &Plan) -> Vec<String> {
    plan.planned.iter().map(|p| p.day.to_string()).collect()
}

#[test]
fn day_zero_is_thursday_first_of_january_1970() {
    assert_eq!(d("1970-01-01"), Day(0));
    assert_eq!(Day(0).weekday(), Weekday::Thu);
    assert_eq!(Day(0).to_string(), "1970-01-01");
    assert_eq!(Day(-1).to_string(), "1969-12-31");
    assert_eq!(d("2026-11-24").weekday(), Weekday::Tue);
    assert_eq!(d("2026-11-24"), Day(20_781));
    assert_eq!(d("2026-11-28").weekday().to_string(), "Saturday");
}

#[test]
fn leap_days_are_validated() {
    assert_eq!(d("2000-02-29").to_string(), "2000-02-29");
    assert_eq!(d("2000-02-29").next(), d("2000-03-01"));
    assert_eq!(d("2024-02-29").plus(-60), d("2023-12-31"));
    let err = Day::parse("2026-02-29").unwrap_err().to_string();
    assert_eq!(
        err,
        "`2026-02-29` is not a day: 2026-02 has 28 days, not 29"
    );
    assert!(Day::parse("1900-02-29").is_err(), "1900 is not a leap year");
    assert!(Day::parse("2026-04-31").is_err());
}

#[test]
fn display_and_parse_round_trip_in_calendar_order() {
    let (from, to) = (d("1600-01-01").0, d("2400-12-31").0);
    let mut prev = Day(from - 1).to_string();
    for n in from..=to {
        let s = Day(n).to_string();
        assert!(s > prev, "{s} after {prev}");
        assert_eq!(s.parse::<Day>(), Ok(Day(n)), "{s}");
        prev = s;
    }
    assert_eq!(d("0000-01-01").to_string(), "0000-01-01");
    assert_eq!(d("9999-12-31").to_string(), "9999-12-31");
}

#[test]
fn from_ms_and_start_ms_agree() {
    let day = d("2026-11-24");
    assert_eq!(day.start_ms(), 1_795_478_400_000);
    assert_eq!(Day::from_ms(1_795_527_910_123), day);
    assert_eq!(Day::from_ms(day.start_ms()), day);
    assert_eq!(Day::from_ms(day.end_ms()), day);
    assert_eq!(day.end_ms() + 1, day.next().start_ms());
    assert_eq!(Day::from_ms(day.start_ms() - 1), d("2026-11-23"));
    assert_eq!((Day(-5).start_ms(), Day(-5).end_ms()), (0, 0));
    assert_eq!(Day(0).end_ms(), 86_399_999);
}

#[test]
fn bad_strings_are_rejected_with_a_message() {
    let bad = [
        "",
        "2026-1-01",
        "2026/11/24",
        "26-11-24",
        "2026-11-24 ",
        " 2026-11-24",
    ];
    let worse = [
        "+026-11-24",
        "2026-11-2x",
        "2026-11-24T00:00",
        "２０２６-11-24",
    ];
    for bad in bad.into_iter().chain(worse) {
        let err = Day::parse(bad).unwrap_err().to_string();
        assert!(err.contains("YYYY-MM-DD"), "{bad:?}: {err}");
    }
    let err = Day::parse("2026-13-01").unwrap_err().to_string();
    assert_eq!(err, "`2026-13-01` is not a day: month 13 is not 01 to 12");
    assert!(Day::parse("2026-00-10").is_err());
    assert!(Day::parse("2026-01-00").is_err());
}

#[test]
fn serde_uses_the_string_form() {
    assert_eq!(
        serde_json::to_string(&d("2026-11-24")).unwrap(),
        r#""2026-11-24""#
    );
    let day: Day = serde_json::from_str(r#""2000-02-29""#).unwrap();
    assert_eq!(day, d("2000-02-29"));
    let err = serde_json::from_str::<Day>(r#""2026-02-29""#).unwrap_err();
    assert!(err.to_string().contains("has 28 days"), "{err}");
    let crew: Crew = serde_json::from_str(
        r#"{"id":"mech-a","name":"Mech A","skills":["mechanical"],"daily_capacity":4,
            "holidays":["2026-12-25"]}"#,
    )
    .unwrap();
    assert_eq!(crew.working_days, Weekday::ALL[..5]);
    assert_eq!(crew.holidays, [d("2026-12-25")]);
    let json = serde_json::to_value(&crew).unwrap();
    assert_eq!(json["working_days"][4], "fri");
    let unknown = r#"{"id":"a","name":"A","skills":["x"],"daily_capacity":1,"shift":"night"}"#;
    assert!(serde_json::from_str::<Crew>(unknown).is_err());
}

#[test]
fn capacity_is_respected() {
    let due = today().plus(4);
    let jobs: Vec<Job> = (1..=5)
        .map(|i| mjob(&format!("wo-{i}"), &format!("s{i}"), due))
        .collect();
    let plan = run(&[mech("mech-a", 2)], &[], &jobs);
    let (mon, tue, wed) = ("2026-11-23", "2026-11-24", "2026-11-25");
    assert_eq!(days(&plan), [mon, mon, tue, tue, wed]);
    assert!(plan.late.is_empty());
}

#[test]
fn non_working_days_and_holidays_are_skipped() {
    let mut a = mech("mech-a", 1);
    a.holidays = vec![d("2026-11-30")];
    let friday = d("2026-11-27");
    let jobs: Vec<Job> = (1..=3)
        .map(|i| mjob(&format!("wo-{i}"), "s", friday.plus(10)))
        .collect();
    let plan = plan(&[a], &[], &jobs, friday, 10);
    assert_eq!(days(&plan), ["2026-11-27", "2026-12-01", "2026-12-02"]);
}

#[test]
fn higher_priority_is_placed_first_when_capacity_is_short() {
    let mut routine = job("wo-routine", "s1", "mechanical", 3, today());
    routine.created_at_ms = 1;
    let mut urgent = job("wo-urgent", "s2", "mechanical", 1, today());
    urgent.created_at_ms = 2;
    let plan = plan(&[mech("mech-a", 1)], &[], &[routine, urgent], today(), 1);
    assert_eq!(placed(&plan), ["wo-urgent mech-a 2026-11-23"]);
    let late = &plan.late[..];
    assert_eq!(
        (late.len(), &*late[0].work_order, late[0].planned_day),
        (1, "wo-routine", None)
    );
    let reason = "mech-a is fully booked on every working day from 2026-11-23 to 2026-11-23";
    assert_eq!(late[0].reason, reason);
}

#[test]
fn earlier_due_first_within_equal_priority() {
    let later = mjob("wo-later", "s1", today().plus(2));
    let sooner = mjob("wo-sooner", "s2", today());
    let plan = run(&[mech("mech-a", 1)], &[], &[later, sooner]);
    assert_eq!(
        placed(&plan),
        ["wo-sooner mech-a 2026-11-23", "wo-later mech-a 2026-11-24"]
    );
    assert!(plan.late.is_empty());
}

#[test]
fn same_site_work_is_grouped_on_one_crew_day() {
    let crews = [mech("mech-a", 4), mech("mech-b", 4)];
    let bookings = [
        booking("wo-0", "mech-b", today().plus(2), "bridge-7"),
        booking("wo-x", "mech-b", today().plus(1), "quay-1"),
    ];
    let due = today().plus(4);
    let jobs = [
        mjob("wo-1", "bridge-7", due),
        mjob("wo-2", "bridge-7", due),
        mjob("wo-3", "pump-3", due),
    ];
    let plan = run(&crews, &bookings, &jobs);
    let wed = ["wo-1 mech-b 2026-11-25", "wo-2 mech-b 2026-11-25"];
    assert_eq!(placed(&plan), [wed[0], wed[1], "wo-3 mech-a 2026-11-23"]);
}

#[test]
fn grouping_never_makes_a_job_late() {
    let crews = [mech("mech-a", 4), mech("mech-b", 4)];
    let bookings = [booking("wo-0", "mech-b", today().plus(4), "bridge-7")];
    let plan = run(
        &crews,
        &bookings,
        &[mjob("wo-1", "bridge-7", today().plus(1))],
    );
    assert_eq!(placed(&plan), ["wo-1 mech-a 2026-11-23"]);
    assert!(plan.late.is_empty());
}

#[test]
fn another_site_does_not_steal_the_slot_a_due_day_needs() {
    // Only mech-a can do structural work, and it is already at the bridge
    // today with one slot left; mech-b is equally free. The pump job goes to
    // mech-b, so the bridge job (due today) still fits on mech-a.
    let crews = [
        crew("mech-a", &["mechanical", "structural"], 2),
        mech("mech-b", 1),
    ];
    let bookings = [booking("wo-0", "mech-a", today(), "bridge-7")];
    let bridge = job("wo-bridge", "bridge-7", "structural", 2, today());
    let plan = run(
        &crews,
        &bookings,
        &[mjob("wo-pump", "pump-3", today()), bridge],
    );
    assert_eq!(
        placed(&plan),
        ["wo-pump mech-b 2026-11-23", "wo-bridge mech-a 2026-11-23"]
    );
    assert!(plan.late.is_empty());
}

#[test]
fn a_job_past_its_due_day_is_planned_late_and_reported() {
    let jobs: Vec<Job> = (1..=4)
        .map(|i| mjob(&format!("wo-{i}"), "s", today()))
        .collect();
    let plan = run(&[mech("mech-a", 1), mech("mech-b", 1)], &[], &jobs);
    assert_eq!(plan.planned.iter().filter(|p| p.late).count(), 2);
    let late: Vec<_> = plan
        .late
        .iter()
        .map(|u| (&*u.work_order, u.planned_day))
        .collect();
    let tue = Some(today().next());
    assert_eq!(late, [("wo-3", tue), ("wo-4", tue)]);
    let reason = "mech-a and mech-b are fully booked until 2026-11-24, 1 day after the due day";
    assert_eq!(plan.late[0].reason, reason);
}

#[test]
fn a_late_job_still_joins_a_crew_at_its_site() {
    // Overdue, so any slot is late; mech-b is at the bridge already.
    let bookings = [booking("wo-0", "mech-b", today(), "bridge-7")];
    let jobs = [mjob("wo-1", "bridge-7", today().plus(-1))];
    let plan = run(&[mech("mech-a", 4), mech("mech-b", 4)], &bookings, &jobs);
    assert_eq!(placed(&plan), ["wo-1 mech-b 2026-11-23"]);
}

#[test]
fn a_weekend_due_day_says_the_crew_does_not_work() {
    let saturday = d("2026-11-28");
    let jobs = [mjob("wo-1", "s", saturday)];
    let plan = plan(&[mech("mech-a", 1)], &[], &jobs, saturday, 10);
    assert_eq!(plan.late[0].planned_day, Some(d("2026-11-30")));
    let reason = "mech-a does not work from 2026-11-28 to the due day 2026-11-28; the earliest \
                  free slot is 2026-11-30, 2 days after it";
    assert_eq!(plan.late[0].reason, reason);
}

#[test]
fn an_overdue_job_is_planned_as_early_as_possible_and_reported() {
    let jobs = [job("wo-1", "s", "mechanical", 3, today().plus(-3))];
    let plan = run(&[mech("mech-a", 1)], &[], &jobs);
    assert_eq!(placed(&plan), ["wo-1 mech-a 2026-11-23"]);
    assert!(plan.planned[0].late);
    assert_eq!(plan.late[0].planned_day, Some(today()));
    let reason = &plan.late[0].reason;
    assert!(
        reason.starts_with("overdue: due 2026-11-20, before today"),
        "{reason}"
    );
}

#[test]
fn a_skill_no_crew_has_is_reported_without_a_day() {
    let crews = [mech("mech-a", 4)];
    let plan = run(
        &crews,
        &[],
        &[job("wo-1", "bridge-7", "structural", 1, today().plus(3))],
    );
    assert!(plan.planned.is_empty());
    let (work_order, due) = ("wo-1".to_owned(), today().plus(3));
    let reason = "no crew has skill `structural`".to_owned();
    assert_eq!(
        plan.late,
        [Unmet {
            work_order,
            due,
            planned_day: None,
            reason
        }]
    );
    let empty = super::plan(&crews, &[], &[mjob("wo-2", "s", today())], today(), 0);
    assert_eq!(
        empty.late[0].reason,
        "the planning horizon is empty (0 days)"
    );
}

#[test]
fn fixed_bookings_consume_capacity() {
    let bookings = [
        booking("wo-0", "mech-a", today(), "s0"),
        booking("wo-00", "mech-a", today(), "s0"),
        booking("wo-x", "other-crew", today().next(), "s0"),
    ];
    let plan = run(
        &[mech("mech-a", 2)],
        &bookings,
        &[mjob("wo-1", "s1", today().plus(3))],
    );
    assert_eq!(placed(&plan), ["wo-1 mech-a 2026-11-24"]);
}

#[test]
fn check_slot_says_why_not() {
    let mut a = mech("mech-a", 4);
    a.holidays = vec![d("2026-12-25")];
    let wed = d("2026-11-25");
    let mut bookings: Vec<Booking> = (0..3)
        .map(|i| booking(&format!("wo-{i}"), "mech-a", wed, "s"))
        .collect();
    bookings.push(booking("wo-b", "mech-b", wed, "s"));
    assert_eq!(check_slot(&a, wed, &bookings), Ok(()));
    bookings.push(booking("wo-3", "mech-a", wed, "s"));
    let full = "mech-a is fully booked on 2026-11-25 (4 of 4)";
    assert_eq!(check_slot(&a, wed, &bookings), Err(full.into()));
    let saturday = "mech-a does not work on Saturday 2026-11-28";
    assert_eq!(check_slot(&a, d("2026-11-28"), &[]), Err(saturday.into()));
    let holiday = "mech-a is on holiday on 2026-12-25";
    assert_eq!(check_slot(&a, d("2026-12-25"), &[]), Err(holiday.into()));
}

#[test]
fn validate_crews_names_the_crew_and_the_problem() {
    let ok = vec![mech("mech-a", 4), crew("struct-a", &["structural"], 2)];
    assert_eq!(validate_crews(&ok), Ok(()));
    type Break = fn(&mut [Crew]);
    let cases: [(Break, &str); 5] = [
        (
            |c| c[1].id = "mech-a".into(),
            "crew `mech-a` is configured more than once",
        ),
        (
            |c| c[1].daily_capacity = 0,
            "crew `struct-a` has daily_capacity 0; it must be at least 1",
        ),
        (|c| c[0].skills.clear(), "crew `mech-a` has no skills"),
        (
            |c| c[1].working_days.clear(),
            "crew `struct-a` has no working days",
        ),
        (
            |c| c[1].id = " ".into(),
            "crew #1 (named `Crew struct-a`) has an empty id",
        ),
    ];
    for (break_it, message) in cases {
        let mut crews = ok.clone();
        break_it(&mut crews);
        assert_eq!(validate_crews(&crews).unwrap_err().to_string(), message);
    }
}

#[test]
fn output_is_deterministic_and_independent_of_input_order() {
    let crews = [mech("mech-b", 1), mech("mech-a", 1)];
    let mut jobs: Vec<Job> = (0..8u8)
        .map(|i| {
            let due = today().plus(i32::from(i % 3));
            job(
                &format!("wo-{i}"),
                &format!("s{}", i % 3),
                "mechanical",
                1 + i % 2,
                due,
            )
        })
        .collect();
    let first = run(&crews, &[], &jobs);
    assert_eq!(first, run(&crews, &[], &jobs));
    jobs.reverse();
    assert_eq!(first, run(&crews, &[], &jobs));
    assert_eq!(
        first.planned[0].crew, "mech-a",
        "ties go to the lower crew id"
    );
}

/// A tiny linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> i32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005);
        self.0 = self.0.wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n) as i32
    }
}

/// Crews, valid fixed bookings and jobs over about two weeks from `today`.
fn random_case(rng: &mut Lcg, today: Day) -> (Vec<Crew>, Vec<Booking>, Vec<Job>) {
    const SKILLS: [&str; 4] = ["mechanical", "structural", "instrumentation", "electrical"];
    let mut r = |n: u64| rng.below(n);
    let crews: Vec<Crew> = (0..1 + r(4))
        .map(|i| {
            let mut c = crew(&format!("c{i}"), &[SKILLS[r(3) as usize]], 1 + r(3) as u32);
            c.skills
                .extend((r(2) == 0).then(|| SKILLS[r(3) as usize].to_owned()));
            c.working_days = Weekday::ALL.into_iter().filter(|_| r(3) > 0).collect();
            if c.working_days.is_empty() {
                c.working_days.push(Weekday::Wed);
            }
            c.holidays = (0..r(3)).map(|_| today.plus(r(12))).collect();
            c
        })
        .collect();
    let mut bookings = vec![];
    for i in 0..r(10) {
        let (c, day) = (&crews[r(crews.len() as u64) as usize], today.plus(r(12)));
        if check_slot(c, day, &bookings).is_ok() {
            let site = format!("s{}", r(4));
            bookings.push(booking(&format!("b{i}"), &c.id, day, &site));
        }
    }
    let jobs = (0..r(16))
        .map(|i| {
            let (site, skill) = (format!("s{}", r(4)), SKILLS[r(4) as usize]);
            let mut j = job(
                &format!("wo-{i}"),
                &site,
                skill,
                1 + r(3) as u8,
                today.plus(r(16) - 3),
            );
            j.created_at_ms = r(5) as u64;
            j
        })
        .collect();
    (crews, bookings, jobs)
}

#[test]
fn random_inputs_keep_the_invariants() {
    let mut rng = Lcg(42);
    for round in 0..400 {
        let (today, horizon) = (Day(20_000 + rng.below(14)), rng.below(15));
        let (crews, bookings, jobs) = random_case(&mut rng, today);
        let plan = plan(&crews, &bookings, &jobs, today, horizon as u32);
        let ctx = || format!("round {round}: {crews:?} {bookings:?} {jobs:?} {plan:#?}");
        let horizon_days = || (0..horizon).map(|n| today.plus(n));
        // Everything on the schedule at the end, fixed and planned.
        let mut all = bookings.clone();
        all.extend(
            plan.planned
                .iter()
                .map(|p| booking(&p.work_order, &p.crew, p.day, &p.site)),
        );
        for (c, day) in crews
            .iter()
            .flat_map(|c| horizon_days().map(move |d| (c, d)))
        {
            let load = all
                .iter()
                .filter(|b| b.crew == c.id && b.day == day)
                .count();
            assert!(load <= c.daily_capacity as usize, "{}", ctx());
        }
        for p in &plan.planned {
            let c = crews.iter().find(|c| c.id == p.crew).unwrap();
            let j = jobs.iter().find(|j| j.work_order == p.work_order).unwrap();
            let in_horizon = p.day >= today && p.day < today.plus(horizon);
            assert!(
                c.works_on(p.day) && c.has_skill(&j.skill) && in_horizon,
                "{}",
                ctx()
            );
            assert_eq!(p.late, p.day > j.due, "{}", ctx());
        }
        for j in &jobs {
            let planned: Vec<_> = plan
                .planned
                .iter()
                .filter(|p| p.work_order == j.work_order)
                .collect();
            let unmet: Vec<_> = plan
                .late
                .iter()
                .filter(|u| u.work_order == j.work_order)
                .collect();
            let ok = match (planned.as_slice(), unmet.as_slice()) {
                ([p], []) => !p.late,
                ([p], [u]) => p.late && u.planned_day == Some(p.day),
                ([], [u]) => u.planned_day.is_none() && !u.reason.is_empty(),
                _ => false,
            };
            assert!(ok, "{}: {planned:?} {unmet:?}; {}", j.work_order, ctx());
            // Capacity only shrinks, so a slot free at the end was free when
            // the job was placed: a late job had none by its due day, an
            // unplaced one none at all.
            let until = match planned.first() {
                None => Day(i32::MAX),
                Some(p) if p.late => j.due,
                Some(_) => continue,
            };
            for c in crews.iter().filter(|c| c.has_skill(&j.skill)) {
                for day in horizon_days().filter(|d| *d <= until) {
                    let free = check_slot(c, day, &all).is_ok();
                    assert!(!free, "{} {} {day}; {}", j.work_order, c.id, ctx());
                }
            }
        }
    }
}
