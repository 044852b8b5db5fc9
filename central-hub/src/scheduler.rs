//! Which crew inspects which asset on which day.
//!
//! Work orders ask for an inspection by a skill (mechanical, structural,
//! instrumentation), with a priority and a due day. This module turns the
//! open ones into a schedule the control room can hand to crews, and it
//! promises operators three things:
//!
//! - **No crew is overbooked.** A crew gets at most its `daily_capacity`
//!   inspections on a day, counting what is already booked, and only on
//!   the days it works (its working weekdays, minus its holidays), and only
//!   for a skill it has.
//! - **Urgent work goes first, and due days are kept when they can be.**
//!   A job only lands after its due day when no crew with the skill has a
//!   free slot before it, and work at the same site is grouped on one crew's
//!   day only where that costs no due day.
//! - **Nothing is silently dropped.** Every job that misses its due day is
//!   reported in [`Plan::late`] with the day it can be done (if any within
//!   the horizon) and why, in words an operator can act on.
//!
//! The plan is pure and deterministic: same input, same [`Plan`], whatever
//! the order of `jobs` and `crews` (every tie falls to an id).
//!
//! # Algorithm
//!
//! Greedy, one job at a time, over the horizon `today ..= today +
//! horizon_days - 1`:
//!
//! 1. Jobs are taken by priority (1 first), then due day, then
//!    `created_at_ms`, then work-order id.
//! 2. A candidate slot for a job is a (crew, day) in the horizon where the
//!    crew has the job's skill, works that day, and has capacity left after
//!    the fixed [`Booking`]s and the jobs already placed by this run.
//! 3. Among candidates on or before the due day, the job goes to
//!    (a) the earliest crew-day that already visits the job's site (ties:
//!    most capacity left, then crew id), so a site's work is done in one
//!    visit; else (b) the earliest day, preferring a crew with no other site
//!    that day (so a crew already visiting a site stays free for that site's
//!    work), then the crew with most capacity left, then crew id. Grouping
//!    only looks at days up to the due day, so it never makes a job late.
//! 4. With no candidate by the due day, the job goes to the earliest
//!    candidate after it (preferring a crew already at the site), is marked
//!    `late`, and is also reported as [`Unmet`] with that `planned_day`.
//!    With no candidate in the horizon at all it is not planned, and is
//!    reported with `planned_day: None`.
//! 5. A job due before `today` is overdue: planned as early as possible and
//!    reported late.
//!
//! Search is bounded: grouping reads an index of (site, day) visits, and
//! the day-by-day search stops at the first free slot, which a valid crew
//! always has soon after its bookings and holidays. Callers pass crews that
//! passed [`validate_crews`] and only jobs not yet booked. Planned and late
//! entries come in placement order (step 1).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MS_PER_DAY: u64 = 86_400_000;

/// A calendar day (UTC), as days since 1970-01-01. Serialises as "YYYY-MM-DD".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

/// Why a string is not a day: the input and the problem, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a day: {problem}")]
pub struct DayError {
    pub input: String,
    pub problem: String,
}

impl Day {
    /// The UTC day containing that Unix-ms instant.
    pub fn from_ms(ms: u64) -> Day {
        Day(i32::try_from(ms / MS_PER_DAY).unwrap_or(i32::MAX))
    }

    /// 00:00 UTC of that day, in Unix ms (days before 1970 give 0).
    pub fn start_ms(self) -> u64 {
        u64::try_from(self.0).map_or(0, |d| d * MS_PER_DAY)
    }

    /// The last millisecond of that day (days before 1970 give 0).
    pub fn end_ms(self) -> u64 {
        u64::try_from(i64::from(self.0) + 1).map_or(0, |d| (d * MS_PER_DAY).saturating_sub(1))
    }

    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3 from Monday).
        Weekday::ALL[(i64::from(self.0) + 3).rem_euclid(7) as usize]
    }

    /// Parses exactly "YYYY-MM-DD" (four-digit year), checking the month and
    /// the day of the month (leap years included).
    pub fn parse(s: &str) -> Result<Day, DayError> {
        let b = s.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        let err = |problem: String| {
            let input = s.to_owned();
            Err(DayError { input, problem })
        };
        if !shape {
            return err("expected YYYY-MM-DD".to_owned());
        }
        let num =
            |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
        let (year, month, day) = (i64::from(num(0..4)), num(5..7), num(8..10));
        if !(1..=12).contains(&month) {
            return err(format!("month {month:02} is not 01 to 12"));
        }
        let days = days_in_month(year, month);
        if !(1..=days).contains(&day) {
            return err(format!("{year:04}-{month:02} has {days} days, not {day}"));
        }
        // Years 0000..=9999 are well inside i32 days.
        Ok(Day(days_from_civil(year, month, day) as i32))
    }

    pub fn next(self) -> Day {
        self.plus(1)
    }

    pub fn plus(self, days: i32) -> Day {
        Day(self.0.saturating_add(days))
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: proleptic Gregorian date to days
/// since 1970-01-01, with 400-year eras of 146 097 days starting in March.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let (era, yoe) = (y.div_euclid(400), y.rem_euclid(400));
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`, the inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "YYYY-MM-DD"; only years 0000 to 9999 parse back.
impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(i64::from(self.0));
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Day {
    type Err = DayError;
    fn from_str(s: &str) -> Result<Day, DayError> {
        Day::parse(s)
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Day, D::Error> {
        let s = String::deserialize(deserializer)?;
        Day::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday first.
    pub const ALL: [Weekday; 7] = {
        use Weekday::*;
        [Mon, Tue, Wed, Thu, Fri, Sat, Sun]
    };

    /// The English name, e.g. "Saturday".
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 7] = [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        NAMES[self as usize]
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn default_working_days() -> Vec<Weekday> {
    Weekday::ALL[..5].to_vec()
}

/// A crew, as configured in the hub's TOML config ([[crews]]) and shown by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crew {
    pub id: String,
    pub name: String,
    /// Matched exactly against [`Job::skill`].
    pub skills: Vec<String>,
    /// Inspections per working day.
    pub daily_capacity: u32,
    /// Default Mon-Fri.
    #[serde(default = "default_working_days")]
    pub working_days: Vec<Weekday>,
    #[serde(default)]
    pub holidays: Vec<Day>,
}

impl Crew {
    /// Whether `day` is one of its working weekdays and not a holiday.
    pub fn works_on(&self, day: Day) -> bool {
        self.working_days.contains(&day.weekday()) && !self.holidays.contains(&day)
    }

    pub fn has_skill(&self, skill: &str) -> bool {
        self.skills.iter().any(|s| s == skill)
    }
}

/// Why a crew list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrewError {
    #[error("crew #{index} (named `{name}`) has an empty id")]
    EmptyId { index: usize, name: String },
    #[error("crew `{0}` is configured more than once")]
    DuplicateId(String),
    #[error("crew `{0}` has no skills")]
    NoSkills(String),
    #[error("crew `{0}` has daily_capacity 0; it must be at least 1")]
    ZeroCapacity(String),
    #[error("crew `{0}` has no working days")]
    NoWorkingDays(String),
}

/// Checks a crew list: non-empty unique ids, at least one skill,
/// daily_capacity >= 1, at least one working day.
pub fn validate_crews(crews: &[Crew]) -> Result<(), CrewError> {
    let mut seen = BTreeSet::new();
    for (index, crew) in crews.iter().enumerate() {
        let id = || crew.id.clone();
        if crew.id.trim().is_empty() {
            let name = crew.name.clone();
            return Err(CrewError::EmptyId { index, name });
        }
        if !seen.insert(crew.id.as_str()) {
            return Err(CrewError::DuplicateId(id()));
        }
        if crew.skills.is_empty() {
            return Err(CrewError::NoSkills(id()));
        }
        if crew.daily_capacity == 0 {
            return Err(CrewError::ZeroCapacity(id()));
        }
        if crew.working_days.is_empty() {
            return Err(CrewError::NoWorkingDays(id()));
        }
    }
    Ok(())
}

/// An inspection to place.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub work_order: String,
    pub site: String,
    pub skill: String,
    /// 1 is the most urgent.
    pub priority: u8,
    pub due: Day,
    pub created_at_ms: u64,
}

/// An inspection already on the schedule (fixed; it uses capacity).
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub work_order: String,
    pub crew: String,
    pub day: Day,
    pub site: String,
}

/// A job placed by [`plan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub work_order: String,
    pub crew: String,
    pub day: Day,
    pub site: String,
    /// After its due day.
    pub late: bool,
}

/// A job that misses its due day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmet {
    pub work_order: String,
    pub due: Day,
    /// The day it could be done, if any within the horizon.
    pub planned_day: Option<Day>,
    /// In words, e.g. "no crew has skill `structural`".
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    pub planned: Vec<Planned>,
    pub late: Vec<Unmet>,
}

/// Inspections per crew-day, fixed and placed, with a site index for grouping.
#[derive(Default)]
struct Book<'a> {
    /// Sites visited by a crew on a day, one entry per inspection.
    crew_days: HashMap<(&'a str, Day), Vec<&'a str>>,
    /// (site, day, crew) for every crew-day visiting a site.
    visits: BTreeSet<(&'a str, Day, &'a str)>,
}

impl<'a> Book<'a> {
    fn add(&mut self, crew: &'a str, day: Day, site: &'a str) {
        self.crew_days.entry((crew, day)).or_default().push(site);
        self.visits.insert((site, day, crew));
    }

    fn left(&self, crew: &Crew, day: Day) -> u32 {
        let load = self
            .crew_days
            .get(&(crew.id.as_str(), day))
            .map_or(0, Vec::len);
        crew.daily_capacity
            .saturating_sub(u32::try_from(load).unwrap_or(u32::MAX))
    }

    fn has_other_site(&self, crew: &Crew, day: Day, site: &str) -> bool {
        self.crew_days
            .get(&(crew.id.as_str(), day))
            .is_some_and(|sites| sites.iter().any(|s| *s != site))
    }

    fn visits_site(&self, crew: &Crew, day: Day, site: &str) -> bool {
        self.visits.contains(&(site, day, crew.id.as_str()))
    }

    fn free(&self, crew: &Crew, day: Day) -> bool {
        crew.works_on(day) && self.left(crew, day) > 0
    }
}

/// Places `jobs` on the crews' calendars from `today` for `horizon_days`
/// days, around the fixed `bookings` (see the module doc for the rules).
pub fn plan(
    crews: &[Crew],
    bookings: &[Booking],
    jobs: &[Job],
    today: Day,
    horizon_days: u32,
) -> Plan {
    let last = i64::from(today.0) + i64::from(horizon_days) - 1;
    let horizon = (horizon_days > 0).then(|| (today, Day(last.min(i64::from(i32::MAX)) as i32)));
    let mut book = Book::default();
    for b in bookings {
        book.add(&b.crew, b.day, &b.site);
    }
    let mut order: Vec<&Job> = jobs.iter().collect();
    order.sort_by_key(|&j| (j.priority, j.due, j.created_at_ms, &j.work_order));
    let mut out = Plan::default();
    for job in order {
        let skilled: Vec<&Crew> = crews.iter().filter(|c| c.has_skill(&job.skill)).collect();
        let unmet = |planned_day, reason| Unmet {
            work_order: job.work_order.clone(),
            due: job.due,
            planned_day,
            reason,
        };
        let Some((crew, day)) = horizon.and_then(|h| place(&skilled, &book, job, h)) else {
            out.late
                .push(unmet(None, reason(&skilled, job, today, horizon, None)));
            continue;
        };
        book.add(&crew.id, day, &job.site);
        let late = day > job.due;
        out.planned.push(Planned {
            work_order: job.work_order.clone(),
            crew: crew.id.clone(),
            day,
            site: job.site.clone(),
            late,
        });
        if late {
            let why = reason(&skilled, job, today, horizon, Some(day));
            out.late.push(unmet(Some(day), why));
        }
    }
    out
}

/// The slot for `job` per steps 3 and 4, or `None` if the horizon has none.
fn place<'c>(
    skilled: &[&'c Crew],
    book: &Book<'_>,
    job: &Job,
    (first, last): (Day, Day),
) -> Option<(&'c Crew, Day)> {
    let site = job.site.as_str();
    // (a) The earliest crew-day by the due day that already visits the site.
    let mut grouped: Option<(&Crew, Day)> = None;
    for &(at, day, crew_id) in book.visits.range((site, first, "")..) {
        if at != site || day > job.due.min(last) || grouped.is_some_and(|(_, d)| day > d) {
            break;
        }
        for &crew in skilled.iter().filter(|c| c.id == crew_id) {
            if book.free(crew, day)
                && grouped.is_none_or(|(g, _)| book.left(crew, day) > book.left(g, day))
            {
                grouped = Some((crew, day));
            }
        }
    }
    if grouped.is_some() {
        return grouped;
    }
    // (b) and step 4: the earliest day with a free crew. Crews that can never
    // take work are left out, so the loop ends soon after the bookings.
    let able: Vec<&Crew> = skilled
        .iter()
        .copied()
        .filter(|c| c.daily_capacity > 0 && !c.working_days.is_empty())
        .collect();
    if able.is_empty() {
        return None;
    }
    let mut day = first;
    loop {
        let best = able.iter().filter(|c| book.free(c, day)).min_by_key(|c| {
            (
                !book.visits_site(c, day, site),
                book.has_other_site(c, day, site),
                std::cmp::Reverse(book.left(c, day)),
                c.id.as_str(),
            )
        });
        if let Some(crew) = best {
            return Some((crew, day));
        }
        if day >= last {
            return None;
        }
        day = day.next();
    }
}

/// "mech-a", "mech-a and mech-b", "mech-a, mech-b and mech-c".
fn names(crews: &[&Crew]) -> String {
    let ids: Vec<&str> = crews.iter().map(|c| c.id.as_str()).collect();
    match ids.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Whether any of `crews` works on some day in `from ..= to`.
fn works_between(crews: &[&Crew], from: Day, to: Day) -> bool {
    // A crew with a working day works within a week of its holidays.
    let crews: Vec<&&Crew> = crews
        .iter()
        .filter(|c| !c.working_days.is_empty())
        .collect();
    !crews.is_empty() && (from.0..=to.0).any(|n| crews.iter().any(|c| c.works_on(Day(n))))
}

/// Why `job` misses its due day: placed late on `planned`, or not at all.
fn reason(
    skilled: &[&Crew],
    job: &Job,
    today: Day,
    horizon: Option<(Day, Day)>,
    planned: Option<Day>,
) -> String {
    let (who, one, due) = (names(skilled), skilled.len() == 1, job.due);
    let (is, does) = if one { ("is", "does") } else { ("are", "do") };
    let Some((first, last)) = horizon.filter(|_| !skilled.is_empty()) else {
        return if skilled.is_empty() {
            format!("no crew has skill `{}`", job.skill)
        } else {
            "the planning horizon is empty (0 days)".to_owned()
        };
    };
    let Some(day) = planned else {
        return if works_between(skilled, first, last) {
            format!("{who} {is} fully booked on every working day from {first} to {last}")
        } else {
            format!("{who} {does} not work on any day from {first} to {last}")
        };
    };
    let after = match i64::from(day.0) - i64::from(due.0) {
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    };
    if due < today {
        format!(
            "overdue: due {due}, before today ({today}); the earliest free slot is {day}, \
             {after} after the due day"
        )
    } else if works_between(skilled, today, due) {
        format!("{who} {is} fully booked until {day}, {after} after the due day")
    } else {
        format!(
            "{who} {does} not work from {today} to the due day {due}; the earliest free slot \
             is {day}, {after} after it"
        )
    }
}

/// Whether `crew` can take one more inspection on `day` given `bookings`
/// (works that day and has capacity left); `Err` says why not, in words.
pub fn check_slot(crew: &Crew, day: Day, bookings: &[Booking]) -> Result<(), String> {
    let (id, capacity) = (&crew.id, crew.daily_capacity);
    if !crew.working_days.contains(&day.weekday()) {
        return Err(format!("{id} does not work on {} {day}", day.weekday()));
    }
    if crew.holidays.contains(&day) {
        return Err(format!("{id} is on holiday on {day}"));
    }
    let booked = bookings.iter().filter(|b| b.crew == *id && b.day == day);
    match booked.count() {
        n if n >= capacity as usize => {
            Err(format!("{id} is fully booked on {day} ({n} of {capacity})"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
