//! Readers for the Python helper's reference files in tests/data/fit (formats in
//! NOTES-python6.md): plain CSV, an optional block of `#` lines, a header line.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

/// The path of a file in tests/data/fit.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fit").join(name)
}

/// A CSV table: its `#` comment lines, column names and rows of strings.
pub struct Table {
    pub comments: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn read(name: &str) -> Table {
        let path = data_path(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut comments = Vec::new();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let mut header = None;
        for line in lines.by_ref() {
            if let Some(c) = line.strip_prefix('#') {
                comments.push(c.trim().to_string());
            } else {
                header = Some(line);
                break;
            }
        }
        let columns = header.expect("a header line").split(',').map(str::to_string).collect();
        let rows = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
        Table { comments, columns, rows }
    }

    pub fn column(&self, name: &str) -> usize {
        self.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"))
    }

    /// Column `name` of every row as f64.
    pub fn floats(&self, name: &str) -> Vec<f64> {
        let c = self.column(name);
        self.rows.iter().map(|r| parse(&r[c])).collect()
    }

    pub fn get(&self, row: usize, name: &str) -> f64 {
        parse(&self.rows[row][self.column(name)])
    }

    pub fn text(&self, row: usize, name: &str) -> &str {
        &self.rows[row][self.column(name)]
    }
}

pub fn parse(s: &str) -> f64 {
    s.trim().parse::<f64>().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// A `key,index,value` file as key -> values (ordered by index).
pub fn key_values(name: &str) -> HashMap<String, Vec<String>> {
    let table = Table::read(name);
    let mut map: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    for row in &table.rows {
        map.entry(row[0].clone()).or_default().push((row[1].parse().unwrap(), row[2].clone()));
    }
    map.into_iter()
        .map(|(k, mut v)| {
            v.sort_by_key(|(i, _)| *i);
            (k, v.into_iter().map(|(_, s)| s).collect())
        })
        .collect()
}
