//! The statement shapes the emulator answers: `SELECT <columns | *> FROM <table name>
//! [VERSION AS OF <n>] [WHERE _metadata.file_path IN (:p, …)] [;]`, `SELECT _metadata.file_path
//! AS file_path, COUNT(*) AS num_rows FROM <table name> [VERSION AS OF <n>] GROUP BY
//! _metadata.file_path [;]` (a table's data files and their rows) and `DESCRIBE HISTORY <table
//! name> [LIMIT <n>] [;]`.

/// A parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Statement {
    /// A `SELECT`.
    Select(Select),
    /// `DESCRIBE HISTORY`: the table's versions, newest first.
    History {
        /// One to three name parts, unquoted.
        table: Vec<String>,
        /// `LIMIT n`.
        limit: Option<u64>,
    },
    /// The table's data files, each with its number of rows.
    Files {
        /// One to three name parts, unquoted.
        table: Vec<String>,
        /// `VERSION AS OF n`.
        version: Option<u64>,
    },
}

/// A parsed `SELECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Select {
    /// Selected column names, unquoted; `None` for `*`.
    pub(crate) columns: Option<Vec<String>>,
    /// One to three name parts: `[catalog.][schema.]table`, unquoted.
    pub(crate) table: Vec<String>,
    /// `VERSION AS OF n`: the table as it was at Delta version `n`.
    pub(crate) version: Option<u64>,
    /// `WHERE _metadata.file_path IN (:a, :b, …)`: the names of the parameters holding the data
    /// files to read.
    pub(crate) files: Option<Vec<String>>,
}

/// Where parsing stopped: the offending token as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) near: String,
    /// 0-based character position in the statement.
    pub(crate) pos: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Identifier or keyword; `quoted` for back-quoted ones, which are never keywords.
    Ident {
        text: String,
        quoted: bool,
    },
    Star,
    Comma,
    Dot,
    Semicolon,
    Other(String),
    End,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    src: &'a str,
}

impl Lexer<'_> {
    fn next_token(&mut self) -> Result<(Token, usize), SyntaxError> {
        while self.chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some((pos, c)) = self.chars.next() else {
            return Ok((Token::End, self.src.len()));
        };
        let token = match c {
            '*' => Token::Star,
            ',' => Token::Comma,
            '.' => Token::Dot,
            ';' => Token::Semicolon,
            '`' => {
                let mut text = String::new();
                loop {
                    match self.chars.next() {
                        Some((_, '`')) => {
                            if self.chars.next_if(|(_, c)| *c == '`').is_some() {
                                text.push('`');
                            } else {
                                break;
                            }
                        }
                        Some((_, c)) => text.push(c),
                        None => {
                            return Err(SyntaxError {
                                near: self.src[pos..].to_owned(),
                                pos,
                            });
                        }
                    }
                }
                Token::Ident { text, quoted: true }
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut text = String::from(c);
                while let Some((_, c)) = self
                    .chars
                    .next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
                {
                    text.push(c);
                }
                Token::Ident {
                    text,
                    quoted: false,
                }
            }
            other => Token::Other(other.to_string()),
        };
        Ok((token, pos))
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    current: (Token, usize),
}

impl Parser<'_> {
    fn advance(&mut self) -> Result<(Token, usize), SyntaxError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.current, next))
    }

    fn error(&self) -> SyntaxError {
        let near = match &self.current.0 {
            Token::Ident { text, quoted: true } => crate::types::backtick(text),
            Token::Ident { text, .. } | Token::Other(text) => text.clone(),
            Token::Star => "*".into(),
            Token::Comma => ",".into(),
            Token::Dot => ".".into(),
            Token::Semicolon => ";".into(),
            Token::End => "end of input".into(),
        };
        SyntaxError {
            near,
            pos: self.current.1,
        }
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), SyntaxError> {
        match &self.current.0 {
            Token::Ident {
                text,
                quoted: false,
            } if text.eq_ignore_ascii_case(keyword) => {
                self.advance()?;
                Ok(())
            }
            _ => Err(self.error()),
        }
    }

    fn identifier(&mut self) -> Result<String, SyntaxError> {
        match &self.current.0 {
            Token::Ident { quoted: true, .. } => {}
            Token::Ident {
                text,
                quoted: false,
            } if !["select", "from", "version", "limit", "where", "group"]
                .iter()
                .any(|k| text.eq_ignore_ascii_case(k)) => {}
            _ => return Err(self.error()),
        }
        match self.advance()?.0 {
            Token::Ident { text, .. } => Ok(text),
            _ => Err(self.error()),
        }
    }

    /// Whether the current token is the (unquoted) keyword.
    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(&self.current.0, Token::Ident { text, quoted: false } if text.eq_ignore_ascii_case(keyword))
    }

    /// A whole number written in digits.
    fn number(&mut self) -> Result<u64, SyntaxError> {
        match &self.current.0 {
            Token::Ident {
                text,
                quoted: false,
            } if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                let n = text.parse().map_err(|_| self.error())?;
                self.advance()?;
                Ok(n)
            }
            _ => Err(self.error()),
        }
    }

    /// `name[.name[.name]]`.
    fn table_name(&mut self) -> Result<Vec<String>, SyntaxError> {
        let mut table = vec![self.identifier()?];
        while table.len() < 3 && self.eat(&Token::Dot)? {
            table.push(self.identifier()?);
        }
        Ok(table)
    }

    /// An optional `;`, then the end.
    fn end(&mut self) -> Result<(), SyntaxError> {
        self.eat(&Token::Semicolon)?;
        if self.current.0 != Token::End {
            return Err(self.error());
        }
        Ok(())
    }

    fn eat(&mut self, token: &Token) -> Result<bool, SyntaxError> {
        if &self.current.0 == token {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The punctuation `symbol` (`(`, `)`, `:`).
    fn symbol(&mut self, symbol: &str) -> Result<(), SyntaxError> {
        self.expect(&Token::Other(symbol.into()))
    }

    /// `_metadata.file_path`, in any case.
    fn file_path_column(&mut self) -> Result<(), SyntaxError> {
        self.keyword("_metadata")?;
        self.expect(&Token::Dot)?;
        self.keyword("file_path")
    }

    /// `token`, or a syntax error.
    fn expect(&mut self, token: &Token) -> Result<(), SyntaxError> {
        if self.eat(token)? {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// `VERSION AS OF <n>`, if it comes next.
    fn version(&mut self) -> Result<Option<u64>, SyntaxError> {
        if !self.at_keyword("version") {
            return Ok(None);
        }
        self.keyword("version")?;
        self.keyword("as")?;
        self.keyword("of")?;
        Ok(Some(self.number()?))
    }

    /// `IN (:a, :b, …)`: the parameter names.
    fn parameter_list(&mut self) -> Result<Vec<String>, SyntaxError> {
        self.keyword("in")?;
        self.symbol("(")?;
        let mut names = Vec::new();
        loop {
            self.symbol(":")?;
            match &self.current.0 {
                Token::Ident {
                    text,
                    quoted: false,
                } if text.chars().next().is_some_and(|c| !c.is_ascii_digit()) => {
                    names.push(text.clone());
                    self.advance()?;
                }
                _ => return Err(self.error()),
            }
            if !self.eat(&Token::Comma)? {
                break;
            }
        }
        self.symbol(")")?;
        Ok(names)
    }

    /// After `SELECT _metadata`: `.file_path AS file_path, COUNT(*) AS num_rows FROM <t>
    /// [VERSION AS OF <n>] GROUP BY _metadata.file_path`.
    fn files_statement(&mut self) -> Result<Statement, SyntaxError> {
        self.expect(&Token::Dot)?;
        self.keyword("file_path")?;
        self.keyword("as")?;
        self.keyword("file_path")?;
        self.expect(&Token::Comma)?;
        self.keyword("count")?;
        self.symbol("(")?;
        self.expect(&Token::Star)?;
        self.symbol(")")?;
        self.keyword("as")?;
        self.keyword("num_rows")?;
        self.keyword("from")?;
        let table = self.table_name()?;
        let version = self.version()?;
        self.keyword("group")?;
        self.keyword("by")?;
        self.file_path_column()?;
        self.end()?;
        Ok(Statement::Files { table, version })
    }
}

/// Parses `SELECT <columns | *> FROM <name>[.<name>[.<name>]] [VERSION AS OF <n>] [;]`, or
/// `DESCRIBE HISTORY <name> [LIMIT <n>] [;]`: keywords in any case, identifiers plain or
/// back-quoted with back-quotes doubled inside.
pub(crate) fn parse_statement(statement: &str) -> Result<Statement, SyntaxError> {
    let mut lexer = Lexer {
        chars: statement.char_indices().peekable(),
        src: statement,
    };
    let current = lexer.next_token()?;
    let mut parser = Parser { lexer, current };
    if parser.at_keyword("describe") {
        parser.keyword("describe")?;
        parser.keyword("history")?;
        let table = parser.table_name()?;
        let limit = if parser.at_keyword("limit") {
            parser.keyword("limit")?;
            Some(parser.number()?)
        } else {
            None
        };
        parser.end()?;
        return Ok(Statement::History { table, limit });
    }
    parser.keyword("select")?;
    if parser.at_keyword("_metadata") {
        parser.keyword("_metadata")?;
        return parser.files_statement();
    }
    let columns = if parser.eat(&Token::Star)? {
        None
    } else {
        let mut columns = vec![parser.identifier()?];
        while parser.eat(&Token::Comma)? {
            columns.push(parser.identifier()?);
        }
        Some(columns)
    };
    parser.keyword("from")?;
    let table = parser.table_name()?;
    let version = parser.version()?;
    let files = if parser.at_keyword("where") {
        parser.keyword("where")?;
        parser.file_path_column()?;
        Some(parser.parameter_list()?)
    } else {
        None
    };
    parser.end()?;
    Ok(Statement::Select(Select {
        columns,
        table,
        version,
        files,
    }))
}

/// Parses a `SELECT` only ([`parse_statement`]).
#[cfg(test)]
fn parse(statement: &str) -> Result<Select, SyntaxError> {
    match parse_statement(statement)? {
        Statement::Select(select) => Ok(select),
        Statement::History { .. } | Statement::Files { .. } => Err(SyntaxError {
            near: "DESCRIBE".into(),
            pos: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str, expected: Result<(Option<&[&str]>, &[&str]), &str>) {
        let got = parse(sql);
        match expected {
            Ok((columns, table)) => {
                let select = got.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
                assert_eq!(
                    select.columns,
                    columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
                    "{sql}"
                );
                assert_eq!(select.table, table, "{sql}");
            }
            Err(near) => assert_eq!(got.map_err(|e| e.near), Err(near.to_owned()), "{sql}"),
        }
    }

    #[test]
    fn cases() {
        check("SELECT * FROM a.b.c", Ok((None, &["a", "b", "c"])));
        check("select * from a.b.c ;", Ok((None, &["a", "b", "c"])));
        check(
            "SeLeCt `x`, y FROM `tre`.`co``h`.t",
            Ok((Some(&["x", "y"]), &["tre", "co`h", "t"])),
        );
        check(
            "SELECT `a``b`, `select` FROM t",
            Ok((Some(&["a`b", "select"]), &["t"])),
        );
        check(
            "SELECT `from` , ` sp ace` FROM a.b",
            Ok((Some(&["from", " sp ace"]), &["a", "b"])),
        );
        check("SELECT * FROM a.b.c.d", Err("."));
        check("SELECT * FROM a.b.c WHERE x = 1", Err("x"));
        check("SELECT * FROM a.b.c; SELECT 1", Err("SELECT"));
        check("SELECT FROM a", Err("FROM"));
        check("DROP TABLE a", Err("DROP"));
        check("SELECT `a FROM b", Err("`a FROM b"));
        check("SELECT a, FROM b", Err("FROM"));
        check("", Err("end of input"));
        check("SELECT count(*) FROM t", Err("("));
        check("SELECT * FROM t VERSION AS OF x", Err("x"));
        check("SELECT * FROM t VERSION OF 1", Err("OF"));
    }

    #[test]
    fn versions_and_history() {
        let select = parse("SELECT `a` FROM c.s.t VERSION AS OF 12;").unwrap();
        assert_eq!(select.version, Some(12));
        assert_eq!(
            parse("select * from t version as of 0").unwrap().version,
            Some(0)
        );
        assert_eq!(parse("SELECT * FROM t").unwrap().version, None);
        assert_eq!(
            parse_statement("DESCRIBE HISTORY `c`.`s`.`t` LIMIT 1").unwrap(),
            Statement::History {
                table: vec!["c".into(), "s".into(), "t".into()],
                limit: Some(1)
            }
        );
        assert!(parse_statement("DESCRIBE HISTORY t LIMIT").is_err());
        assert!(parse_statement("DESCRIBE t").is_err());
    }

    #[test]
    fn data_files_and_reads_by_file() {
        assert_eq!(
            parse_statement(
                "SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM `c`.`s`.`t` \
                 VERSION AS OF 3 GROUP BY _metadata.file_path"
            )
            .unwrap(),
            Statement::Files {
                table: vec!["c".into(), "s".into(), "t".into()],
                version: Some(3)
            }
        );
        let select =
            parse("SELECT `a` FROM c.s.t VERSION AS OF 2 WHERE _metadata.file_path IN (:f0, :f1)")
                .unwrap();
        assert_eq!(select.version, Some(2));
        assert_eq!(select.files, Some(vec!["f0".into(), "f1".into()]));
        for bad in [
            "SELECT `a` FROM t WHERE _metadata.file_path IN ()",
            "SELECT `a` FROM t WHERE _metadata.file_path IN (:0)",
            "SELECT `a` FROM t WHERE _metadata.file_path IN ('x')",
            "SELECT `a` FROM t WHERE _metadata.file_path = :f0",
            "SELECT `a` FROM t WHERE a IN (:f0)",
            "SELECT _metadata.file_path AS file_path, COUNT(*) AS num_rows FROM t",
            "SELECT _metadata.file_path FROM t GROUP BY _metadata.file_path",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
    }
}
