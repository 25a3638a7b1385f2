//! Every record of a database no server holds, tree by tree, out and in:
//! what `hearth export` and `hearth import` carry, knowing nothing of the
//! engine's files.

use std::{collections::HashMap, path::Path};

use super::error::{Result, StoreError};

/// sled's own tree, which hearth never writes.
const SLED_DEFAULT: &[u8] = b"__sled__default";

/// Calls `each(tree, key, value)` for every record of the database in
/// `data_dir`, trees in name order and keys in order; the record count.
pub fn read_all(
    data_dir: &Path,
    mut each: impl FnMut(&str, &[u8], &[u8]) -> Result<()>,
) -> Result<u64> {
    let path = data_dir.join("db");
    if !path.is_dir() {
        return Err(StoreError::data(format!(
            "{} holds no database",
            data_dir.display()
        )));
    }
    let db = super::compression::config(&path, 4 * 1024 * 1024).open()?;
    let mut names = db.tree_names();
    names.sort();
    let mut records = 0;
    for name in names.iter().filter(|name| name.as_ref() != SLED_DEFAULT) {
        let tree = db.open_tree(name)?;
        let name =
            std::str::from_utf8(name).map_err(|_| StoreError::data("a tree name is not UTF-8"))?;
        for entry in tree.iter() {
            let (key, value) = entry?;
            each(name, &key, &value)?;
            records += 1;
        }
    }
    Ok(records)
}

/// Writes records into a new database.
pub struct Loader {
    db: sled::Db,
    trees: HashMap<String, sled::Tree>,
    pub records: u64,
}

impl Loader {
    /// A new database in `data_dir`, which must not hold one.
    pub fn create(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("db");
        if path.exists() {
            return Err(StoreError::data(format!(
                "{} already holds a database",
                data_dir.display()
            )));
        }
        Ok(Self {
            db: super::compression::config(&path, 4 * 1024 * 1024).open()?,
            trees: HashMap::new(),
            records: 0,
        })
    }

    pub fn insert(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        if !self.trees.contains_key(tree) {
            self.trees.insert(tree.to_owned(), self.db.open_tree(tree)?);
        }
        if let Some(tree) = self.trees.get(tree) {
            tree.insert(key, value)?;
        }
        self.records += 1;
        Ok(())
    }

    /// Makes everything loaded durable.
    pub fn finish(self) -> Result<u64> {
        self.db.flush()?;
        Ok(self.records)
    }
}
