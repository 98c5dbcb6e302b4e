//! Charts drawn on the server as SVG (no script needed to see them): a
//! list's member count along valid time, and a country's eligibility
//! along valid time on one list.

use eligibility::Timestamp;
use maud::{Markup, html};

use super::layout::when;
use crate::reads::timeline::{CountStep, Interval};

/// Valid time mapped onto `[left, right]` pixels.
#[derive(Clone, Copy)]
pub(super) struct Axis {
    start: i64,
    end: i64,
    left: f64,
    right: f64,
}

const YEAR_MICROS: i64 = 365 * 24 * 3600 * 1_000_000;

impl Axis {
    /// An axis covering `times` and `now`, with a margin on each side.
    pub fn covering(times: impl Iterator<Item = Timestamp>, now: Timestamp, left: f64, right: f64) -> Axis {
        let mut lo = now.as_micros();
        let mut hi = now.as_micros();
        for t in times {
            lo = lo.min(t.as_micros());
            hi = hi.max(t.as_micros());
        }
        let span = (hi - lo).max(YEAR_MICROS / 2);
        Axis { start: lo - span / 12, end: hi + span / 12, left, right }
    }

    fn x(&self, t: Timestamp) -> f64 {
        let f = (t.as_micros() - self.start) as f64 / (self.end - self.start) as f64;
        self.left + f.clamp(0.0, 1.0) * (self.right - self.left)
    }

    /// Year boundaries inside the axis, for ticks.
    fn years(&self) -> Vec<(i32, f64)> {
        let first = year_of(self.start) + 1;
        let last = year_of(self.end);
        (first..=last).filter_map(|y| Timestamp::parse(&format!("{y:04}-01-01")).ok().map(|t| (y, self.x(t)))).collect()
    }
}

fn year_of(micros: i64) -> i32 {
    Timestamp::from_micros(micros).map_or(1970, |t| t.to_string()[..4].parse().unwrap_or(1970))
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The member count of a list along valid time, a step per distinct
/// effective time, each step marked (and labelled with its count and
/// revisions); a line at the page's valid time.
pub(super) fn members(steps: &[CountStep], as_of: Timestamp, now: Timestamp) -> Markup {
    let (w, h, top, bottom) = (800.0, 220.0, 16.0, 190.0);
    let axis = Axis::covering(steps.iter().map(|s| s.from).chain([as_of]), now, 44.0, w - 12.0);
    let max = steps.iter().map(|s| s.members).max().unwrap_or(0).max(1) as f64;
    let y = |n: u32| bottom - (n as f64 / (max * 1.15)) * (bottom - top);
    let mut d = format!("M{},{}", px(axis.left), px(y(0)));
    for s in steps {
        d.push_str(&format!("H{}V{}", px(axis.x(s.from)), px(y(s.members))));
    }
    d.push_str(&format!("H{}", px(axis.right)));
    let label = match steps.last() {
        Some(s) => format!("Member count over valid time; {} members from {}", s.members, when(s.from)),
        None => "Member count over valid time: no members ever recorded".to_owned(),
    };
    html! {
        svg.chart viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(label) {
            line.axis x1=(px(axis.left)) y1=(px(bottom)) x2=(px(axis.right)) y2=(px(bottom)) {}
            line.axis x1=(px(axis.left)) y1=(px(top)) x2=(px(axis.left)) y2=(px(bottom)) {}
            text.tick x=(px(axis.left - 6.0)) y=(px(y(0) + 4.0)) text-anchor="end" { "0" }
            text.tick x=(px(axis.left - 6.0)) y=(px(y(max as u32) + 4.0)) text-anchor="end" { (max as u32) }
            @for (year, x) in axis.years() {
                line.grid x1=(px(x)) y1=(px(top)) x2=(px(x)) y2=(px(bottom)) {}
                text.tick x=(px(x)) y=(px(bottom + 16.0)) text-anchor="middle" { (year) }
            }
            path.count d=(d) {}
            line.asof x1=(px(axis.x(as_of))) y1=(px(top)) x2=(px(axis.x(as_of))) y2=(px(bottom)) {
                title { "As of " (when(as_of)) }
            }
            @for s in steps {
                @let revs = s.revisions.iter().map(|r| format!("r{}", r.0)).collect::<Vec<_>>().join(", ");
                g.step data-from=(s.from.to_string()) data-members=(s.members) {
                    circle cx=(px(axis.x(s.from))) cy=(px(y(s.members))) r="4" {
                        title { (when(s.from)) ": " (s.members) " members (" (revs) ")" }
                    }
                    text.value x=(px(axis.x(s.from) + 6.0)) y=(px(y(s.members) - 6.0)) { (s.members) }
                }
            }
        }
    }
}

/// A country's eligibility on one list along `axis`: a bar per interval,
/// each boundary marked with the revision that made it.
pub(super) fn timeline(intervals: &[Interval], axis: Axis, label: &str) -> Markup {
    let (top, height) = (18.0, 22.0);
    let xs = |i: &Interval| {
        let from = i.from.map_or(axis.left, |t| axis.x(t));
        let to = i.to.map_or(axis.right, |t| axis.x(t));
        (from, (to - from).max(0.5))
    };
    html! {
        svg.timeline viewBox=(format!("0 0 {} 62", axis.right + 12.0)) role="img" aria-label=(label) {
            @for i in intervals {
                @let (x, width) = xs(i);
                rect class=(if i.eligible { "eligible" } else { "ineligible" }) x=(px(x)) y=(px(top)) width=(px(width)) height=(px(height)) {
                    title {
                        (if i.eligible { "Eligible" } else { "Not eligible" })
                        @if let Some(f) = i.from { " from " (when(f)) }
                        @if let Some(t) = i.to { " until " (when(t)) }
                    }
                }
                @if let Some(e) = &i.opened_by {
                    line.boundary x1=(px(x)) y1=(px(top - 4.0)) x2=(px(x)) y2=(px(top + height + 4.0)) {}
                    text.tick x=(px(x)) y=(px(top + height + 16.0)) text-anchor="middle" { "r" (e.revision.0) }
                }
            }
            @for (year, x) in axis.years() {
                text.tick.year x=(px(x)) y="11" text-anchor="middle" { (year) }
            }
        }
    }
}
