//! Local input: hex and binary files, key files, and batch CSV files. Everything here is checked
//! before anything is sent, and every refusal carries a stable code (and a line number for CSV).

use corridor_sdk::api::CurrencyView;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::{BATCH_LEGS_MAX, MEMO_BYTES_MAX, TX_BYTES_MAX};
use corridor_sdk::{AccountId, Amount, CurrencyCode, PrivateKey, TransferLeg};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Bytes of a batch CSV file: 500 legs with long memos fit with room to spare.
pub const BATCH_CSV_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Bytes of a signature or unsigned-transaction file (hex takes twice the raw size).
pub const INPUT_FILE_BYTES_MAX: usize = 2 * TX_BYTES_MAX + 16;
/// Line errors listed in one CSV refusal; the rest are counted.
const CSV_ERRORS_SHOWN_MAX: usize = 20;

/// Hex text as users paste it: surrounding whitespace, an optional `0x`, line breaks inside.
pub fn parse_hex(text: &str, what: &str) -> Result<Vec<u8>, Error> {
    let trimmed = text.trim();
    let digits: String = trimmed
        .strip_prefix("0x")
        .unwrap_or(trimmed)
        .split_whitespace()
        .collect();
    if digits.is_empty() {
        return Err(Error::new(ErrorCode::BadHex, format!("{what} is empty")));
    }
    hex::decode(&digits).map_err(|error| Error::new(ErrorCode::BadHex, format!("{what} is not hex: {error}")))
}

/// A whole file of at most `limit_bytes`.
pub fn read_file_limited(path: &Path, limit_bytes: usize, what: &str) -> Result<Vec<u8>, Error> {
    let cannot = |error: std::io::Error| {
        Error::new(
            ErrorCode::NotFound,
            format!("cannot read {what} file {}: {error}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(limit_bytes).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() > limit_bytes {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("{what} file {} exceeds {limit_bytes} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

/// An unsigned transaction file: raw canonical bytes (as `xxd -r -p` writes them) or the hex
/// text `corridor tx build` prints. The two cannot be confused: raw bytes start with the
/// version byte 0x01, which is not a hex digit.
pub fn unsigned_from_file_bytes(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let looks_like_hex = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || *b == b'x')
        && bytes.iter().any(u8::is_ascii_hexdigit);
    if looks_like_hex {
        // Only ASCII bytes got here, so this is valid UTF-8.
        parse_hex(&String::from_utf8_lossy(bytes), "unsigned transaction")
    } else {
        Ok(bytes.to_vec())
    }
}

/// A PEM private key file, with the file named in the error.
pub fn read_key(path: &Path) -> Result<PrivateKey, Error> {
    PrivateKey::read_file(path).map_err(|error| match error.code {
        ErrorCode::NotFound => error,
        code => Error::new(code, format!("key file {}: {}", path.display(), error.message)),
    })
}

/// One leg of a batch with the CSV line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvLeg {
    pub line: u64,
    pub leg: TransferLeg,
}

/// Collects line-numbered refusals; the first error's code is the code of the whole refusal.
#[derive(Default)]
struct LineErrors {
    first_code: Option<ErrorCode>,
    lines: Vec<String>,
    count: usize,
}

impl LineErrors {
    fn add(&mut self, line: u64, error: &Error) {
        self.first_code.get_or_insert(error.code);
        self.count += 1;
        if self.lines.len() < CSV_ERRORS_SHOWN_MAX {
            self.lines
                .push(format!("line {line}: {}: {}", error.code, error.message));
        }
    }

    fn into_result(self, file: &str) -> Result<(), Error> {
        let Some(code) = self.first_code else {
            return Ok(());
        };
        let mut message = format!("{file}: {} bad row(s): {}", self.count, self.lines.join("; "));
        if self.count > self.lines.len() {
            message.push_str(&format!("; and {} more", self.count - self.lines.len()));
        }
        Err(Error::new(code, message))
    }
}

/// Parse a batch CSV: a header naming `payee`, `amount`, `currency` and optionally `memo` (in
/// any order, no other columns), then one row per leg. Every row is checked; all bad rows are
/// reported at once with their line numbers. With the chain's `currencies`, each row's currency
/// must exist and its amount fit the currency's scale.
pub fn parse_batch_csv(bytes: &[u8], file: &str, currencies: Option<&[CurrencyView]>) -> Result<Vec<CsvLeg>, Error> {
    let scales: Option<BTreeMap<&CurrencyCode, u32>> =
        currencies.map(|list| list.iter().map(|currency| (&currency.code, currency.scale)).collect());
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let bad_csv = |error: csv::Error| Error::new(ErrorCode::Malformed, format!("{file}: {error}"));
    let headers = csv.headers().map_err(bad_csv)?.clone();
    let mut columns: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, name) in headers.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        let known = ["payee", "amount", "currency", "memo"]
            .into_iter()
            .find(|known| *known == name);
        let Some(known) = known else {
            return Err(Error::new(
                ErrorCode::BadRequest,
                format!("{file}: line 1: unknown column `{name}` (expected payee,amount,currency,memo)"),
            ));
        };
        if columns.insert(known, index).is_some() {
            return Err(Error::new(
                ErrorCode::BadRequest,
                format!("{file}: line 1: column `{known}` twice"),
            ));
        }
    }
    let column = |name: &str| {
        columns.get(name).copied().ok_or_else(|| {
            Error::new(
                ErrorCode::BadRequest,
                format!("{file}: line 1: the header lacks `{name}` (expected payee,amount,currency,memo)"),
            )
        })
    };
    let (payee_at, amount_at, currency_at) = (column("payee")?, column("amount")?, column("currency")?);
    let memo_at = columns.get("memo").copied();

    let mut legs = Vec::new();
    let mut errors = LineErrors::default();
    for record in csv.records() {
        let record = record.map_err(bad_csv)?;
        // csv's own line count skips blank lines; count from the record's byte offset instead.
        // The offset may point at blank lines that precede the record.
        let mut offset = record
            .position()
            .map_or(0, |position| usize::try_from(position.byte()).unwrap_or(usize::MAX));
        while bytes.get(offset).is_some_and(|b| *b == b'\n' || *b == b'\r') {
            offset += 1;
        }
        let before = bytes.get(..offset).unwrap_or(bytes);
        let line = 1 + before.iter().filter(|b| **b == b'\n').count() as u64;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if legs.len() + errors.count >= BATCH_LEGS_MAX {
            return Err(Error::new(
                ErrorCode::BatchTooLarge,
                format!("{file}: line {line}: a batch has at most {BATCH_LEGS_MAX} legs"),
            ));
        }
        let field = |at: usize| record.get(at).unwrap_or_default();
        match parse_row(
            field(payee_at),
            field(amount_at),
            field(currency_at),
            memo_at.map(field),
        )
        .and_then(|leg| check_currency(&leg, scales.as_ref()).map(|()| leg))
        {
            Ok(leg) => legs.push(CsvLeg { line, leg }),
            Err(error) => errors.add(line, &error),
        }
    }
    errors.into_result(file)?;
    if legs.is_empty() {
        return Err(Error::new(
            ErrorCode::BatchEmpty,
            format!("{file}: no rows after the header"),
        ));
    }
    Ok(legs)
}

fn parse_row(payee: &str, amount: &str, currency: &str, memo: Option<&str>) -> Result<TransferLeg, Error> {
    let to = AccountId::new(payee)?;
    let amount = Amount::parse(amount)?;
    if !amount.is_positive() {
        return Err(Error::new(
            ErrorCode::AmountNotPositive,
            format!("amount {amount} must be positive"),
        ));
    }
    let currency = CurrencyCode::new(currency)?;
    let memo = memo.filter(|memo| !memo.is_empty()).map(str::to_owned);
    if let Some(memo) = &memo
        && memo.len() > MEMO_BYTES_MAX
    {
        return Err(Error::new(
            ErrorCode::MemoTooLong,
            format!("memo over {MEMO_BYTES_MAX} bytes"),
        ));
    }
    Ok(TransferLeg {
        to,
        currency,
        amount,
        memo,
    })
}

/// With the chain's currency scales, a leg's currency must exist and its amount fit the scale.
fn check_currency(leg: &TransferLeg, scales: Option<&BTreeMap<&CurrencyCode, u32>>) -> Result<(), Error> {
    let Some(scales) = scales else { return Ok(()) };
    match scales.get(&leg.currency) {
        None => Err(Error::new(
            ErrorCode::UnknownCurrency,
            format!("no currency {} on this chain", leg.currency),
        )),
        Some(scale) if !leg.amount.fits_scale(*scale) => Err(Error::new(
            ErrorCode::AmountScale,
            format!(
                "amount {} has more than {scale} decimal places for {}",
                leg.amount, leg.currency
            ),
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<CsvLeg>, Error> {
        parse_batch_csv(text.as_bytes(), "pay.csv", None)
    }

    #[test]
    fn csv_good_rows_with_and_without_memo() {
        let legs = parse("payee,amount,currency,memo\nbob@icbc-cn,10.50,CNY,invoice 7\n\ncarol@boc-hk, 3 ,HKD,\n")
            .expect("valid");
        assert_eq!(legs.len(), 2);
        assert_eq!(legs[0].line, 2);
        assert_eq!(legs[0].leg.amount.to_string(), "10.5");
        assert_eq!(legs[0].leg.memo.as_deref(), Some("invoice 7"));
        assert_eq!(legs[1].line, 4);
        assert_eq!(legs[1].leg.memo, None);
        // Memo column omitted entirely, columns in another order, short rows.
        let legs = parse("currency,payee,amount\nCNY,bob,1\n").expect("valid");
        assert_eq!(legs[0].leg.to.as_str(), "bob");
        let legs = parse("payee,amount,currency,memo\nbob,1,CNY\n").expect("memo cell missing");
        assert_eq!(legs[0].leg.memo, None);
        let legs = parse("payee,amount,currency,memo\nbob,1,CNY,\"a, quoted memo\"\n").expect("quoted");
        assert_eq!(legs[0].leg.memo.as_deref(), Some("a, quoted memo"));
    }

    #[test]
    fn csv_bad_rows_are_reported_with_line_numbers() {
        let error =
            parse("payee,amount,currency,memo\nBob,1,CNY,\nbob,1.2.3,CNY,\nbob,0,CNY,\nbob,1,cny,\nok,1,CNY,\n")
                .expect_err("bad rows");
        assert_eq!(error.code, ErrorCode::BadAccountId);
        for expected in [
            "4 bad row(s)",
            "line 2: bad_account_id",
            "line 3: malformed",
            "line 4: amount_not_positive",
            "line 5: unknown_currency",
        ] {
            assert!(error.message.contains(expected), "{expected} in {}", error.message);
        }
        let error = parse("payee,amount,currency\nbob,1e3,CNY\n").expect_err("exponent");
        assert_eq!(error.code, ErrorCode::Malformed);
        assert!(error.message.contains("line 2: malformed"));
        let long = format!(
            "payee,amount,currency,memo\nbob,1,CNY,{}\n",
            "m".repeat(MEMO_BYTES_MAX + 1)
        );
        assert_eq!(parse(&long).map_err(|e| e.code), Err(ErrorCode::MemoTooLong));
    }

    #[test]
    fn csv_header_and_size_rules() {
        assert_eq!(
            parse("payee,amount\nbob,1\n").map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            parse("payee,amount,currency,note\n").map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            parse("payee,amount,currency\n").map_err(|e| e.code),
            Err(ErrorCode::BatchEmpty)
        );
        let mut many = String::from("payee,amount,currency\n");
        for _ in 0..=BATCH_LEGS_MAX {
            many.push_str("bob,1,CNY\n");
        }
        let error = parse(&many).expect_err("too many");
        assert_eq!(error.code, ErrorCode::BatchTooLarge);
        assert!(error.message.contains(&format!("line {}", BATCH_LEGS_MAX + 2)));
        assert!(parse(&many[..many.len() - "bob,1,CNY\n".len()]).is_ok());
    }

    #[test]
    fn csv_legs_checked_against_chain_currencies() {
        let currencies = vec![CurrencyView {
            code: CurrencyCode::new("CNY").expect("code"),
            scale: 2,
            issuer: AccountId::new("pboc").expect("id"),
            supply: Amount::from(100),
            transfer_limit: None,
        }];
        let text = "payee,amount,currency\nbob,1.25,CNY\nbob,1.255,CNY\nBob,1,CNY\nbob,1,XYZ\n";
        let error = parse_batch_csv(text.as_bytes(), "pay.csv", Some(&currencies)).expect_err("bad");
        assert_eq!(error.code, ErrorCode::AmountScale);
        assert!(error.message.contains("3 bad row(s)"), "{}", error.message);
        assert!(error.message.contains("line 3: amount_scale"));
        assert!(error.message.contains("line 4: bad_account_id"));
        assert!(error.message.contains("line 5: unknown_currency"));
        assert!(parse_batch_csv(b"payee,amount,currency\nbob,1.25,CNY\n", "pay.csv", Some(&currencies)).is_ok());
    }

    #[test]
    fn hex_input() {
        assert_eq!(parse_hex(" 0x0a0B\n", "x"), Ok(vec![0x0a, 0x0b]));
        assert_eq!(parse_hex("0a 0b\n0c", "x"), Ok(vec![0x0a, 0x0b, 0x0c]));
        assert_eq!(parse_hex("abc", "x").map_err(|e| e.code), Err(ErrorCode::BadHex));
        assert_eq!(parse_hex("zz", "x").map_err(|e| e.code), Err(ErrorCode::BadHex));
        assert_eq!(parse_hex("  ", "x").map_err(|e| e.code), Err(ErrorCode::BadHex));
    }

    #[test]
    fn unsigned_files_raw_or_hex() {
        let raw = vec![0x01, 0x0c, 0x00, 0x30, 0xff];
        assert_eq!(unsigned_from_file_bytes(&raw), Ok(raw.clone()));
        assert_eq!(unsigned_from_file_bytes(b"010c0030ff\n"), Ok(raw));
    }

    #[test]
    fn files_are_size_limited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sig.der");
        std::fs::write(&path, [7u8; 10]).expect("write");
        assert_eq!(read_file_limited(&path, 10, "signature"), Ok(vec![7u8; 10]));
        assert_eq!(
            read_file_limited(&path, 9, "signature").map_err(|e| e.code),
            Err(ErrorCode::TooLarge)
        );
        let missing = read_file_limited(&dir.path().join("nope"), 9, "signature").expect_err("missing");
        assert_eq!(missing.code, ErrorCode::NotFound);
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, "garbage").expect("write");
        let Err(error) = read_key(&key_path) else {
            panic!("not a key")
        };
        assert!(error.message.contains("key.pem"));
    }
}
