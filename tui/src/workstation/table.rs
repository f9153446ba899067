//! A table's model: its rows, the filtered and sorted order shown, and a selection that
//! follows the selected row's identity through refreshes, filters and sorts.

use crate::filter::Filter;

use super::rows::TableRow;

/// Sort column and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub descending: bool,
}

/// One view's table.
#[derive(Debug, Clone)]
pub struct TableModel<R> {
    rows: Vec<R>,
    /// Indices into `rows`, filtered and sorted: what is shown, in order.
    visible: Vec<usize>,
    /// Position of the selection in `visible`.
    cursor: usize,
    /// The selected row's identity.
    selected: Option<String>,
    pub sort: Sort,
    pub columns: usize,
    filter: Option<Filter>,
}

impl<R: TableRow> TableModel<R> {
    pub fn new(columns: usize, sort: Sort) -> Self {
        Self {
            rows: Vec::new(),
            visible: Vec::new(),
            cursor: 0,
            selected: None,
            sort,
            columns,
            filter: None,
        }
    }

    /// Replaces every row, keeping the selection on the same row when it is still there.
    pub fn set_rows(&mut self, rows: Vec<R>) {
        self.rows = rows;
        self.refresh();
    }

    /// Adds rows (a sweep streaming in).
    pub fn extend(&mut self, rows: impl IntoIterator<Item = R>) {
        self.rows.extend(rows);
        self.refresh();
    }

    /// Changes rows in place, then re-filters and re-sorts.
    pub fn update_rows(&mut self, change: impl FnMut(&mut R)) {
        self.rows.iter_mut().for_each(change);
        self.refresh();
    }

    /// All rows, shown or not.
    pub fn rows(&self) -> &[R] {
        &self.rows
    }

    /// How many rows are shown.
    pub fn visible_len(&self) -> usize {
        self.visible.len()
    }

    /// The shown rows from `start`, at most `count` of them.
    pub fn window(&self, start: usize, count: usize) -> impl Iterator<Item = &R> + '_ {
        self.visible
            .iter()
            .skip(start)
            .take(count)
            .map(|&i| &self.rows[i])
    }

    /// Position of the selection among the shown rows.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The selected row, if any is shown.
    pub fn selected(&self) -> Option<&R> {
        self.visible.get(self.cursor).map(|&i| &self.rows[i])
    }

    /// The filter in force.
    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    /// Sets or clears the filter.
    pub fn set_filter(&mut self, filter: Option<Filter>) {
        self.filter = filter.filter(|f| !f.is_empty());
        self.refresh();
    }

    /// Moves the selection by `delta` rows, stopping at the ends.
    pub fn move_by(&mut self, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        let last = self.visible.len() - 1;
        self.select_position(self.cursor.saturating_add_signed(delta).min(last));
    }

    /// Selects the shown row at `position` (clamped).
    pub fn select_position(&mut self, position: usize) {
        if self.visible.is_empty() {
            self.cursor = 0;
            return;
        }
        self.cursor = position.min(self.visible.len() - 1);
        self.selected = self.selected().map(|r| r.id().to_owned());
    }

    /// Sorts by the next (`step` 1) or previous (`step` -1) column.
    pub fn cycle_sort(&mut self, step: isize) {
        let columns = self.columns.max(1) as isize;
        self.sort.column = (self.sort.column as isize + step).rem_euclid(columns) as usize;
        self.refresh();
    }

    /// Reverses the sort order.
    pub fn reverse_sort(&mut self) {
        self.sort.descending = !self.sort.descending;
        self.refresh();
    }

    fn refresh(&mut self) {
        let filter = self.filter.as_ref();
        self.visible = (0..self.rows.len())
            .filter(|&i| filter.is_none_or(|f| f.matches(&self.rows[i])))
            .collect();
        let Sort { column, descending } = self.sort;
        let rows = &self.rows;
        // Unstable is fine: every comparison ends on the row's unique id.
        self.visible.sort_unstable_by(|&a, &b| {
            let order = rows[a].compare(&rows[b], column);
            if descending { order.reverse() } else { order }
        });
        let found = self
            .selected
            .as_deref()
            .and_then(|id| self.visible.iter().position(|&i| rows[i].id() == id));
        match found {
            Some(position) => self.cursor = position,
            None => self.select_position(self.cursor),
        }
    }
}
