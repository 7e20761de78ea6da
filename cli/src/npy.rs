//! NumPy `.npy` files (format version 1.0) of little-endian float32 or float64 matrices:
//! the header written by [`header`], and a reader of the header of a file written by us or by
//! NumPy (`numpy.save` of a C-ordered 2-D array).

use std::fmt::Write as _;

/// The magic string, version 1.0.
const MAGIC: &[u8; 8] = b"\x93NUMPY\x01\x00";

/// The header of a C-ordered little-endian matrix [rows][cols] of `descr` ("<f4" or "<f8"),
/// padded with spaces to a multiple of 64 bytes ending in a newline (as NumPy writes it), so
/// that the data that follows is aligned.
pub fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let mut shape_text = String::from("(");
    for (i, n) in shape.iter().enumerate() {
        if i > 0 {
            shape_text.push_str(", ");
        }
        write!(shape_text, "{n}").expect("writing to a String");
    }
    if shape.len() == 1 {
        shape_text.push(',');
    }
    shape_text.push(')');
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = MAGIC.len() + 2 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let header_len = total - MAGIC.len() - 2;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// A parsed header: the element type, the shape and where the data starts.
#[derive(Debug, PartialEq)]
pub struct Header {
    pub descr: String,
    pub shape: Vec<usize>,
    pub data_offset: usize,
}

/// Reads the header at the start of `bytes` (versions 1.0 and 2.0).
///
/// Errors: a message saying what is wrong (not a .npy file, Fortran order, a header that does
/// not parse).
pub fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a NumPy .npy file (no magic string)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let text = bytes
        .get(start..start + len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or("the .npy header is truncated or not text")?;
    let field = |key: &str| -> Result<&str, String> {
        let at = text.find(&format!("'{key}'")).ok_or(format!("the .npy header has no '{key}'"))?;
        let rest = text[at + key.len() + 2..].trim_start();
        rest.strip_prefix(':').map(str::trim_start).ok_or(format!("the .npy header's '{key}' has no value"))
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("bad 'descr' in the .npy header")?;
    if !field("fortran_order")?.starts_with("False") {
        return Err("the .npy array is in Fortran order; C order is needed".into());
    }
    let shape = field("shape")?;
    let inner =
        shape.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or("bad 'shape' in the .npy header")?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad dimension '{s}' in the .npy shape")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Header { descr: descr.to_string(), shape, data_offset: start + len })
}

/// Little-endian bytes of f32 values.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes a float32 matrix [rows][cols] as a .npy file.
pub fn write_f32(path: &std::path::Path, values: &[f32], shape: &[usize]) -> std::io::Result<()> {
    let mut bytes = header("<f4", shape);
    bytes.extend(f32_bytes(values));
    std::fs::write(path, bytes)
}

/// Reads a float32 .npy file: (shape, values).
///
/// Errors: a message naming the file.
pub fn read_f32(path: &std::path::Path) -> Result<(Vec<usize>, Vec<f32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let h = parse_header(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if h.descr != "<f4" {
        return Err(format!("{}: dtype {} where float32 (<f4) is needed", path.display(), h.descr));
    }
    let count: usize = h.shape.iter().product();
    let data = &bytes[h.data_offset..];
    if data.len() != 4 * count {
        return Err(format!(
            "{}: {} data bytes for shape {:?} ({} expected)",
            path.display(),
            data.len(),
            h.shape,
            4 * count
        ));
    }
    let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((h.shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_numpy_bytes() {
        // numpy.save of np.zeros((3, 19), '<f4') writes exactly this header (NumPy 1.x/2.x).
        let expected = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 19), }";
        let h = header("<f4", &[3, 19]);
        assert_eq!(&h[..expected.len()], expected);
        assert_eq!(h.len(), 128);
        assert_eq!(*h.last().unwrap(), b'\n');
        let parsed = parse_header(&h).unwrap();
        assert_eq!(parsed, Header { descr: "<f4".into(), shape: vec![3, 19], data_offset: 128 });
        assert_eq!(parse_header(&header("<f8", &[7])).unwrap().shape, vec![7]);
    }
}
