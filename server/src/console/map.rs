//! The world map: country shapes from Natural Earth (1:50m, public
//! domain; via the `world-atlas` 2.0.2 package, ISC), projected (Natural
//! Earth projection, 1000 x 500) and simplified once by
//! `server/assets/console/tools/world-map.mjs` into `world.tsv`, embedded
//! here. Each country is coloured by a class the page chooses and links to
//! its timeline; countries too small to see at this scale get a dot.

use std::sync::LazyLock;

use eligibility::Country;
use maud::{Markup, html};

/// One shape of the map file.
struct Shape {
    /// The country (`None` for areas without an ISO code, e.g. N. Cyprus).
    country: Option<Country>,
    /// Its label when it has no code.
    label: &'static str,
    /// Centroid, for the dot of a small country.
    cx: &'static str,
    cy: &'static str,
    /// Projected area in square pixels.
    area: f32,
    /// SVG path data.
    d: &'static str,
}

const WORLD: &str = include_str!("../../assets/console/world.tsv");

/// Smaller than this (px²), a country also gets a dot.
const DOT_BELOW: f32 = 12.0;

/// The outline of the globe, then the countries.
static SHAPES: LazyLock<(&'static str, Vec<Shape>)> = LazyLock::new(|| {
    let mut sphere = "";
    let mut shapes = Vec::new();
    for line in WORLD.lines() {
        let mut f = line.splitn(4, '\t');
        let (Some(code), Some(centroid), Some(area), Some(d)) = (f.next(), f.next(), f.next(), f.next()) else {
            continue;
        };
        if code == "#sphere" {
            sphere = d;
            continue;
        }
        let (cx, cy) = centroid.split_once(',').unwrap_or(("0", "0"));
        shapes.push(Shape {
            country: Country::parse(code).ok(),
            label: code,
            cx,
            cy,
            area: area.parse().unwrap_or(0.0),
            d,
        });
    }
    (sphere, shapes)
});

/// How one country appears: a CSS class and a sentence for its tooltip.
pub(super) struct Paint {
    /// `eligible`, `removed`, `ineligible`, ...
    pub class: &'static str,
    /// E.g. "not eligible: removed on 2021-11-01 (r3)".
    pub label: String,
}

/// The map, each country painted by `paint`.
pub(super) fn world(title: &str, paint: impl Fn(Country) -> Paint) -> Markup {
    let (sphere, shapes) = &*SHAPES;
    html! {
        svg.map viewBox="0 0 1000 500" role="img" aria-label=(title) {
            path.sphere d=(sphere) {}
            @for s in shapes {
                @match s.country {
                    Some(c) => {
                        @let p = paint(c);
                        a href=(format!("/countries/{}", c.alpha2())) aria-label=(format!("{} {}: {}", c.alpha2(), c.name(), p.label)) {
                            path class=(p.class) data-cc=(c.alpha2()) d=(s.d) {
                                title { (c.alpha2()) " " (c.name()) ": " (p.label) }
                            }
                            @if s.area < DOT_BELOW {
                                circle class=(p.class) data-dot=(c.alpha2()) cx=(s.cx) cy=(s.cy) r="3" {}
                            }
                        }
                    }
                    None => {
                        path.nodata d=(s.d) { title { (s.label) ": no ISO 3166 code" } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_has_every_demo_country_and_the_globe() {
        let (sphere, shapes) = &*SHAPES;
        assert!(sphere.starts_with('M'));
        for code in ["MX", "MA", "SA", "AE", "LI", "MT", "LU", "US", "JP", "XK"] {
            let c = Country::parse(code).unwrap();
            assert!(shapes.iter().any(|s| s.country == Some(c)), "{code} missing from the map");
        }
        // Tiny states are drawn as dots as well.
        let malta = shapes.iter().find(|s| s.label == "MT").unwrap();
        assert!(malta.area < DOT_BELOW);
    }
}
