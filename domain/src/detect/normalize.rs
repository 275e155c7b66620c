//! Normalisation shared by every detector: one pass over the text that maps each character to a
//! single byte (Latin look-alikes of Cyrillic letters become Latin, dashes become `-`) and finds
//! the keywords (context words, gearbox-type words, money markers) with their positions.
//!
//! Positions are character indices into the original text, so context windows are measured in
//! characters as a reader would count them.

use super::keywords::{self, Keyword};

/// Normalised byte for a letter or digit of another script (a Cyrillic letter without a Latin
/// twin such as `ф` or `и`, Greek, CJK, …). Identifiers glued to such a character are suspect.
pub(crate) const FOREIGN_ALNUM: u8 = 0x80;
/// Normalised byte for any other non-ASCII character (emoji, symbols, `₽`).
pub(crate) const FOREIGN_OTHER: u8 = 0x81;

/// The character was a Cyrillic look-alike mapped to a Latin letter.
pub(crate) const FROM_CYRILLIC: u8 = 1;
/// The character was a lowercase letter.
pub(crate) const FROM_LOWERCASE: u8 = 2;

/// One character of the input after normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cell {
    /// Uppercase ASCII letter or digit, ASCII punctuation, `b' '` for any whitespace, `b'-'` for
    /// any dash, or [`FOREIGN_ALNUM`] / [`FOREIGN_OTHER`].
    pub(crate) byte: u8,
    /// [`FROM_CYRILLIC`] and [`FROM_LOWERCASE`] bits.
    pub(crate) flags: u8,
}

impl Cell {
    /// An uppercase Latin letter or a digit after normalisation.
    pub(crate) fn is_id(self) -> bool {
        self.byte.is_ascii_uppercase() || self.byte.is_ascii_digit()
    }

    /// A mapped lowercase Cyrillic letter (`а`, `к`, `т`, …).
    pub(crate) fn is_lowercase_cyrillic(self) -> bool {
        self.flags & (FROM_CYRILLIC | FROM_LOWERCASE) == FROM_CYRILLIC | FROM_LOWERCASE
    }
}

/// A keyword found in the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    /// Character index of the first character of the word.
    pub(crate) start: usize,
    /// Character index one past the word.
    pub(crate) end: usize,
    /// What the word means.
    pub(crate) keyword: Keyword,
}

/// The normalised text.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    /// One cell per character of the input.
    pub(crate) cells: Vec<Cell>,
    /// Keywords in text order.
    pub(crate) hits: Vec<Hit>,
}

impl Scanned {
    /// Distinct keywords with `role` whose word overlaps `[start - radius, end + radius)`, in text
    /// order, at most `limit` of them.
    pub(crate) fn context(&self, start: usize, end: usize, radius: usize, role: u8, limit: usize) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for hit in self.near(start, end, radius).filter(|hit| hit.keyword.roles & role != 0) {
            if !names.contains(&hit.keyword.name) {
                names.push(hit.keyword.name);
                if names.len() == limit {
                    break;
                }
            }
        }
        names
    }

    /// Whether any keyword with `role` overlaps `[start - radius, end + radius)`.
    pub(crate) fn has_context(&self, start: usize, end: usize, radius: usize, role: u8) -> bool {
        self.near(start, end, radius).any(|hit| hit.keyword.roles & role != 0)
    }

    /// Hits overlapping `[start - radius, end + radius)`. Hits are in text order and do not overlap,
    /// so a binary search finds the first one.
    fn near(&self, start: usize, end: usize, radius: usize) -> impl Iterator<Item = &Hit> {
        let lo = start.saturating_sub(radius);
        let hi = end.saturating_add(radius);
        let first = self.hits.partition_point(|hit| hit.end <= lo);
        self.hits[first..].iter().take_while(move |hit| hit.start < hi)
    }

    /// The cell at `index`, or a space outside the text.
    pub(crate) fn at(&self, index: usize) -> Cell {
        self.cells.get(index).copied().unwrap_or(Cell { byte: b' ', flags: 0 })
    }

    /// The cell before `index`, or a space at the start of the text.
    pub(crate) fn before(&self, index: usize) -> Cell {
        index.checked_sub(1).map_or(Cell { byte: b' ', flags: 0 }, |i| self.at(i))
    }
}

/// Longest lowercase word prefix (in UTF-8 bytes) kept for keyword matching; every keyword is shorter.
const WORD_BUFFER: usize = 48;

/// Normalises `text` and finds its keywords.
pub(crate) fn scan(text: &str) -> Scanned {
    let mut cells = Vec::with_capacity(text.len());
    let mut hits = Vec::new();
    let mut word = WordBuilder {
        buf: [0; WORD_BUFFER],
        len: 0,
        overflow: false,
        start: 0,
        first: ' ',
        has_lowercase: false,
        after_digit: false,
    };
    // Normalised byte of the last non-space character before the current word.
    let mut last_significant = b' ';

    for (index, ch) in text.chars().enumerate() {
        let info = inspect(ch);
        cells.push(info.cell);
        if info.word_char {
            if word.len == 0 && !word.overflow {
                word.start = index;
                word.first = info.folded;
                word.after_digit = last_significant.is_ascii_digit();
            }
            word.push(info);
        } else {
            word.flush(index, &mut hits);
            if matches!(ch, '₽' | '$' | '€') {
                hits.push(Hit { start: index, end: index + 1, keyword: keywords::MONEY });
            }
        }
        if info.cell.byte != b' ' {
            last_significant = info.cell.byte;
        }
    }
    word.flush(cells.len(), &mut hits);
    Scanned { cells, hits }
}

/// Accumulates the lowercased current word for keyword matching.
struct WordBuilder {
    buf: [u8; WORD_BUFFER],
    len: usize,
    overflow: bool,
    start: usize,
    first: char,
    has_lowercase: bool,
    after_digit: bool,
}

impl WordBuilder {
    fn push(&mut self, info: CharInfo) {
        self.has_lowercase |= info.lowercase;
        if self.len + info.folded.len_utf8() <= WORD_BUFFER {
            self.len += info.folded.encode_utf8(&mut self.buf[self.len..]).len();
        } else {
            self.overflow = true;
        }
    }

    fn flush(&mut self, end: usize, hits: &mut Vec<Hit>) {
        if self.len > 0 && !self.overflow {
            let word = &self.buf[..self.len];
            if let Some(keyword) = keywords::classify(word, self.first, !self.has_lowercase, self.after_digit) {
                hits.push(Hit { start: self.start, end, keyword });
            }
        }
        self.len = 0;
        self.overflow = false;
        self.has_lowercase = false;
    }
}

/// Everything the scan needs to know about one character.
#[derive(Clone, Copy)]
struct CharInfo {
    cell: Cell,
    /// Letter or digit (part of a keyword word).
    word_char: bool,
    /// A lowercase letter.
    lowercase: bool,
    /// Lowercase form, `ё` folded to `е`.
    folded: char,
}

/// Classifies one character; ASCII and the basic Cyrillic alphabet take fast paths.
fn inspect(ch: char) -> CharInfo {
    let simple = |byte: u8, flags: u8, word_char: bool, lowercase: bool, folded: char| CharInfo {
        cell: Cell { byte, flags },
        word_char,
        lowercase,
        folded,
    };
    match ch {
        'a'..='z' => simple(ch as u8 - 32, FROM_LOWERCASE, true, true, ch),
        'A'..='Z' => simple(ch as u8, 0, true, false, ch.to_ascii_lowercase()),
        '0'..='9' => simple(ch as u8, 0, true, false, ch),
        '\t' | '\n' | '\r' | '\u{b}' | '\u{c}' => simple(b' ', 0, false, false, ch),
        '\0'..='\u{7f}' => simple(ch as u8, 0, false, false, ch),
        'А'..='я' | 'Ё' | 'ё' => {
            let lowercase = ch >= 'а' || ch == 'ё';
            let folded = match ch {
                'Ё' | 'ё' => 'е',
                // Capital letters are 32 code points before their lowercase forms.
                _ if !lowercase => char::from_u32(ch as u32 + 32).unwrap_or(ch),
                _ => ch,
            };
            let cell = match homoglyph(ch) {
                Some((byte, true)) => Cell { byte, flags: FROM_CYRILLIC | FROM_LOWERCASE },
                Some((byte, false)) => Cell { byte, flags: FROM_CYRILLIC },
                None => Cell { byte: FOREIGN_ALNUM, flags: 0 },
            };
            CharInfo { cell, word_char: true, lowercase, folded }
        }
        _ => {
            let word_char = ch.is_alphanumeric();
            let byte = if is_dash(ch) {
                b'-'
            } else if ch.is_whitespace() {
                b' '
            } else if word_char {
                FOREIGN_ALNUM
            } else {
                FOREIGN_OTHER
            };
            let folded = ch.to_lowercase().next().unwrap_or(ch);
            simple(byte, 0, word_char, word_char && ch.is_lowercase(), folded)
        }
    }
}

/// Latin letter (uppercase) for a Cyrillic letter that looks like it, and whether it was lowercase.
/// Lowercase `в` does not look like `b` and is left alone.
pub(crate) fn homoglyph(ch: char) -> Option<(u8, bool)> {
    Some(match ch {
        'А' => (b'A', false),
        'а' => (b'A', true),
        'В' => (b'B', false),
        'С' => (b'C', false),
        'с' => (b'C', true),
        'Е' => (b'E', false),
        'е' => (b'E', true),
        'К' => (b'K', false),
        'к' => (b'K', true),
        'М' => (b'M', false),
        'м' => (b'M', true),
        'Н' => (b'H', false),
        'н' => (b'H', true),
        'О' => (b'O', false),
        'о' => (b'O', true),
        'Р' => (b'P', false),
        'р' => (b'P', true),
        'Т' => (b'T', false),
        'т' => (b'T', true),
        'У' => (b'Y', false),
        'у' => (b'Y', true),
        'Х' => (b'X', false),
        'х' => (b'X', true),
        _ => return None,
    })
}

/// Hyphen, non-breaking hyphen, figure dash, en and em dash, minus sign and their full-width forms.
fn is_dash(ch: char) -> bool {
    matches!(ch, '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}')
}

/// An identifier-shaped word: runs of letters and digits joined by single dashes
/// (`NZE141-6012345`, `RE4F04A-B41`, `31020-3VX2D`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdWord {
    /// Parts as `[start, end)` character ranges; only the first [`MAX_PARTS`] are kept.
    pub(crate) parts: [(usize, usize); MAX_PARTS],
    /// Number of parts in the word (may exceed [`MAX_PARTS`]).
    pub(crate) count: usize,
}

/// Parts kept per [`IdWord`].
pub(crate) const MAX_PARTS: usize = 4;

impl IdWord {
    /// The kept parts.
    pub(crate) fn parts(&self) -> &[(usize, usize)] {
        &self.parts[..self.count.min(MAX_PARTS)]
    }

    /// Character index of the first character.
    pub(crate) fn start(&self) -> usize {
        self.parts[0].0
    }

    /// Character index one past the last kept part.
    pub(crate) fn end(&self) -> usize {
        self.parts[self.count.min(MAX_PARTS) - 1].1
    }
}

/// Splits the normalised text into identifier words.
pub(crate) fn id_words(cells: &[Cell]) -> Vec<IdWord> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < cells.len() {
        if !cells[i].is_id() {
            i += 1;
            continue;
        }
        let mut word = IdWord { parts: [(0, 0); MAX_PARTS], count: 0 };
        loop {
            let start = i;
            while i < cells.len() && cells[i].is_id() {
                i += 1;
            }
            if word.count < MAX_PARTS {
                word.parts[word.count] = (start, i);
            }
            word.count += 1;
            let joined = i + 1 < cells.len() && cells[i].byte == b'-' && cells[i + 1].is_id();
            if !joined {
                break;
            }
            i += 1;
        }
        if trim_russian_edges(cells, &mut word) {
            words.push(word);
        }
    }
    words
}

/// Lowercase Cyrillic look-alikes at the edge of a word that is glued to a Cyrillic letter
/// without a Latin twin belong to that Russian word, not to the identifier: "винJTN…" starts at
/// `J`, "фокус3" is just `3`. Returns false when nothing of the word is left.
fn trim_russian_edges(cells: &[Cell], word: &mut IdWord) -> bool {
    let last = word.count.min(MAX_PARTS) - 1;
    let (mut start, first_end) = word.parts[0];
    if start > 0 && cells[start - 1].byte == FOREIGN_ALNUM {
        while start < first_end && cells[start].is_lowercase_cyrillic() {
            start += 1;
        }
    }
    let (last_start, mut end) = word.parts[last];
    if end < cells.len() && cells[end].byte == FOREIGN_ALNUM && word.count <= MAX_PARTS {
        while end > last_start && cells[end - 1].is_lowercase_cyrillic() {
            end -= 1;
        }
    }
    word.parts[0].0 = start;
    word.parts[last].1 = end;
    word.parts[..=last].iter().all(|&(s, e)| s < e)
}

/// The normalised bytes of `range`.
pub(crate) fn bytes_of(cells: &[Cell], (start, end): (usize, usize)) -> impl Iterator<Item = u8> + '_ {
    cells[start..end].iter().map(|c| c.byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(text: &str) -> Vec<u8> {
        scan(text).cells.iter().map(|c| c.byte).collect()
    }

    #[test]
    fn maps_cyrillic_look_alikes_and_dashes() {
        assert_eq!(normalised("ХТА21099"), b"XTA21099");
        assert_eq!(normalised("NZЕ141—6012345"), b"NZE141-6012345");
        assert_eq!(normalised("a\tb"), b"A B");
        // Lowercase "в" is not a look-alike of "b"; "ф" has no Latin twin.
        assert_eq!(normalised("вВф"), [FOREIGN_ALNUM, b'B', FOREIGN_ALNUM]);
        assert_eq!(normalised("😀₽"), [FOREIGN_OTHER, FOREIGN_OTHER]);
        let flags: Vec<u8> = scan("Кк").cells.iter().map(|c| c.flags).collect();
        assert_eq!(flags, [FROM_CYRILLIC, FROM_CYRILLIC | FROM_LOWERCASE]);
    }

    #[test]
    fn splits_identifier_words_on_single_dashes() {
        let s = scan("NZE141-6012345, FWLB-03-000 a--b");
        let words = id_words(&s.cells);
        let counts: Vec<usize> = words.iter().map(|w| w.count).collect();
        assert_eq!(counts, vec![2, 3, 1, 1]);
        assert_eq!((words[0].start(), words[0].end()), (0, 14));
    }

    #[test]
    fn russian_word_edges_are_not_part_of_identifiers() {
        let spans = |text: &str| -> Vec<(usize, usize)> {
            let s = scan(text);
            id_words(&s.cells).iter().map(|w| (w.start(), w.end())).collect()
        };
        // "вин" + VIN: "н" maps to H but belongs to the word.
        assert_eq!(spans("винJTNBE46K803123456"), vec![(3, 20)]);
        // "фокус3": only the digit is left.
        assert_eq!(spans("фокус3"), vec![(5, 6)]);
        // "кузов": "ку" is dropped entirely; "ов" is glued to "з" and "в".
        assert_eq!(spans("кузов"), vec![]);
        // A VIN typed in lowercase Cyrillic look-alikes stays whole.
        assert_eq!(spans("хта21099"), vec![(0, 8)]);
    }

    #[test]
    fn keyword_positions_are_character_indices() {
        let s = scan("Нужна АКПП, вин ...");
        let names: Vec<(&str, usize, usize)> = s.hits.iter().map(|h| (h.keyword.name, h.start, h.end)).collect();
        assert_eq!(names, vec![("акпп", 6, 10), ("vin", 12, 15)]);
    }
}
