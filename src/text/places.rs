//! Delivery zones of the places customers name ("giao về Đông Anh", "ship quận 3"):
//! a data table (`places.tsv`) of Vietnamese districts, provinces and islands with
//! the zone words shops price delivery by ("ngoại thành hà nội", "tỉnh miền nam").

use super::{fold, has_diacritics, Normalizer};

const PLACES: &str = include_str!("places.tsv");

#[derive(Debug, Clone)]
pub struct Gazetteer {
    /// (place, zone syllables), longest place first.
    places: Vec<(Phrase, Vec<String>)>,
    /// The words that make a message about delivery.
    cues: Vec<Phrase>,
    /// Words naming an area a shop prices delivery by, not a single place ("hà
    /// nội", "nội thành", "miền nam").
    areas: Vec<Phrase>,
}

/// Syllables of a table phrase, with their diacritic-free forms computed once.
#[derive(Debug, Clone)]
struct Phrase {
    marked: Vec<String>,
    folded: Vec<String>,
}

impl Phrase {
    fn new(marked: Vec<String>) -> Self {
        let folded = marked.iter().map(|s| fold(s)).collect();
        Self { marked, folded }
    }

    fn len(&self) -> usize {
        self.marked.len()
    }

    /// Whether `typed` holds this phrase at `at`: a syllable typed with marks
    /// (`typed_marked`) must match exactly, one typed without matches the
    /// diacritic-free form.
    fn matches_at(&self, typed: &[String], typed_marked: &[bool], at: usize) -> bool {
        typed.len() - at >= self.len()
            && (0..self.len()).all(|k| {
                let t = &typed[at + k];
                if typed_marked[at + k] {
                    *t == self.marked[k]
                } else {
                    *t == self.folded[k]
                }
            })
    }
}

impl Gazetteer {
    pub fn new(normalizer: &Normalizer) -> Self {
        let rows: Vec<(Vec<String>, Vec<String>)> = PLACES
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .map(|(place, zone)| (normalizer.syllables(place), normalizer.syllables(zone)))
            .filter(|(p, z)| !p.is_empty() && !z.is_empty())
            .collect();
        let (cues, places): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(p, _)| p == &["cue"]);
        let (areas, places): (Vec<_>, Vec<_>) =
            places.into_iter().partition(|(p, _)| p == &["area"]);
        let cues = cues
            .into_iter()
            .map(|(_, words)| Phrase::new(words))
            .collect();
        let areas = areas
            .into_iter()
            .map(|(_, words)| Phrase::new(words))
            .collect();
        let mut places: Vec<(Phrase, Vec<String>)> = places
            .into_iter()
            .map(|(place, zone)| (Phrase::new(place), zone))
            .collect();
        places.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Self {
            places,
            cues,
            areas,
        }
    }

    /// Whether `typed` is about delivery: it holds a cue word ("giao", "phí ship").
    pub fn about_delivery(&self, typed: &[String]) -> bool {
        let marked: Vec<bool> = typed.iter().map(|t| has_diacritics(t)).collect();
        (0..typed.len()).any(|i| {
            self.cues
                .iter()
                .any(|cue| cue.matches_at(typed, &marked, i))
        })
    }

    /// Whether `typed` names a place or an area delivery is priced by ("quận 3",
    /// "Đà Nẵng", "hà nội", "ngoại thành"), whatever it is about.
    pub fn names_place(&self, typed: &[String]) -> bool {
        let marked: Vec<bool> = typed.iter().map(|t| has_diacritics(t)).collect();
        (0..typed.len()).any(|i| {
            self.places
                .iter()
                .map(|(place, _)| place)
                .chain(&self.areas)
                .any(|p| p.matches_at(typed, &marked, i))
        })
    }

    /// The zone words of the places named in `typed` (syllables as the customer typed
    /// them, before any restoration), if the message is about delivery: a syllable
    /// typed with marks must match exactly, one typed without matches the place's
    /// diacritic-free form ("dong anh"), so "giá lại" is not "Gia Lai". Each zone
    /// once, in order of mention.
    pub fn zones(&self, typed: &[String]) -> Vec<&[String]> {
        let mut out: Vec<&[String]> = Vec::new();
        let marked: Vec<bool> = typed.iter().map(|t| has_diacritics(t)).collect();
        if !self.about_delivery(typed) {
            return out;
        }
        let mut i = 0;
        while i < typed.len() {
            let hit = self
                .places
                .iter()
                .find(|(place, _)| place.matches_at(typed, &marked, i));
            match hit {
                Some((place, zone)) => {
                    if !out.contains(&zone.as_slice()) {
                        out.push(zone);
                    }
                    i += place.len();
                }
                None => i += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_map_to_their_delivery_zone() {
        let n = Normalizer::default();
        let g = Gazetteer::new(&n);
        let zones = |t: &str| -> Vec<String> {
            g.zones(&n.syllables(t))
                .iter()
                .map(|z| z.join(" "))
                .collect()
        };
        let cases: [(&str, &[&str]); 8] = [
            ("giao về Đông Anh mất bao lâu", &["ngoại thành hà nội"]),
            ("giao ve dong anh mat bao lau", &["ngoại thành hà nội"]),
            ("ship quận 3 bao nhiêu", &["nội thành tp hồ chí minh"]),
            ("gửi về an giang, cà mau", &["tỉnh miền nam"]),
            (
                "ship Hà Giang với Đà Nẵng",
                &["tỉnh miền bắc", "tỉnh miền trung"],
            ),
            // Marked syllables must match exactly: "giá lại" is not Gia Lai.
            ("giao xong shop đổi giá lại không", &[]),
            ("giao quận 12 với quận 1", &["nội thành tp hồ chí minh"]),
            // Not about delivery: no zone.
            ("đặt vé tàu ra Huế ở đâu", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(zones(text), want, "{text}");
        }
    }
}
