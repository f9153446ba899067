//! The list views' common parts: what a row and a list view must say of themselves, a
//! table's model (rows, the filtered and sorted order shown, a selection that follows the
//! selected row's identity), and a list loaded from AWS with its load state.

use std::cmp::Ordering;

use ratatui::layout::Constraint;
use ratatui::style::Style;

use crate::filter::{Filter, Filterable};
use crate::theme::Theme;

/// Something slow that was asked for, and how it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(String),
}

/// A row of any table: an identity that survives refreshes, and an order per column.
pub trait TableRow: Filterable {
    /// Stable identity: selection follows it across refreshes and re-sorts.
    fn id(&self) -> &str;
    /// Orders two rows by `column`.
    fn compare(&self, other: &Self, column: usize) -> Ordering;
}

/// One cell before it is fitted to its column: raw (untrusted) text and a style.
pub type RawCell = (String, Style);

/// Names of the instances the sweep found, for rows that show an instance by id.
pub trait InstanceNames {
    fn instance_name(&self, instance_id: &str) -> Option<&str>;
}

/// What an empty list says instead of rows, by how its load stands.
#[derive(Debug)]
pub struct EmptyText {
    /// Rows there are, but the filter hides them all.
    pub filtered: &'static str,
    pub loading: &'static str,
    /// Said before the load's error.
    pub failed: &'static str,
    /// The load found nothing: what to do next.
    pub nothing: &'static str,
    /// The same, when nothing can be changed (read-only mode).
    pub nothing_read_only: &'static str,
}

/// A list view: its columns, first sort and widths, how a row is drawn, what it says empty.
pub trait ListView: TableRow {
    const COLUMNS: &'static [&'static str];
    const SORT: Sort;
    /// Every column, most important first: the table keeps as many as fit, in this order,
    /// so what identifies a row is the last to go.
    const PRIORITY: &'static [usize];
    /// What the list says empty; `None`: the view never stands empty for long.
    const EMPTY: Option<EmptyText> = None;
    /// Width of each column, in [`ListView::COLUMNS`] order.
    fn widths() -> Vec<Constraint>;
    /// The row's cells, one per column.
    fn cells(&self, names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell>;
}

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

/// A view's table before layout: column titles and widths, and the rows on screen.
#[derive(Debug)]
pub struct TableSpec {
    pub titles: &'static [&'static str],
    pub widths: Vec<Constraint>,
    pub rows: Vec<Vec<RawCell>>,
    pub sort: Sort,
    pub cursor: usize,
    pub shown: usize,
    pub total: usize,
    pub filter: Option<String>,
    /// Columns by importance ([`ListView::PRIORITY`]).
    pub priority: &'static [usize],
}

/// The narrowest a column whose width follows the space left (`Fill`: a name, a title) is
/// shown: twelve columns, or three tenths of the table, whichever is more, so that the free
/// text a row is known by is not squeezed out by the columns after it.
fn fill_minimum(available: usize) -> usize {
    (available * 3 / 10).max(12)
}

/// Which columns a table of `available` columns shows, and how wide each is, in column
/// order. Columns are taken by `priority` while they fit (the first is always taken), a
/// `Length(n)` column at `n` or its content (`content[c]`, the widest value on screen or the
/// title) whichever is less, a `Fill` column at [`fill_minimum`]. The room left then widens
/// the columns taken towards their content: the free text (names, titles) first, then a
/// bounded column (ids, states, times) whose value is longer than it was sized for.
pub fn fit_columns(
    widths: &[Constraint],
    priority: &[usize],
    content: &[usize],
    available: usize,
) -> Vec<(usize, usize)> {
    const SPACING: usize = 1;
    const NARROWEST_FILL: usize = 12;
    let is_fill = |c: usize| !matches!(widths[c], Constraint::Length(_));
    let narrowest = |c: usize, fill: usize| match widths[c] {
        Constraint::Length(n) => usize::from(n).min(content[c]),
        _ => fill.min(content[c]),
    };
    // Which columns: the free text keeps a fair share against the columns after it.
    let mut taken: Vec<usize> = Vec::new();
    let mut used = 0;
    for &c in priority {
        let need = narrowest(c, fill_minimum(available)) + usize::from(!taken.is_empty()) * SPACING;
        if taken.is_empty() || used + need <= available {
            taken.push(c);
            used += need;
        }
    }
    // How wide: from their narrowest.
    let mut chosen: Vec<(usize, usize)> = taken
        .iter()
        .map(|&c| (c, narrowest(c, NARROWEST_FILL)))
        .collect();
    let used: usize =
        chosen.iter().map(|(_, w)| w).sum::<usize>() + chosen.len().saturating_sub(1) * SPACING;
    // The free text grows to its content first (a bounded column is already at its
    // `Length` or its content); what is still left lets a bounded column show a value
    // longer than it was sized for.
    let mut room = available.saturating_sub(used);
    for fill in [true, false] {
        for (c, width) in &mut chosen {
            if is_fill(*c) == fill {
                let grow = content[*c].saturating_sub(*width).min(room);
                *width += grow;
                room -= grow;
            }
        }
    }
    // The first column alone may be wider than the table: it is cut, not dropped.
    if let Some((_, width)) = chosen.first_mut() {
        *width = (*width).min(available);
    }
    chosen.sort_unstable_by_key(|(c, _)| *c);
    chosen
}

/// A list view's rows with how their load stands.
#[derive(Debug, Clone)]
pub struct ListTable<R> {
    pub table: TableModel<R>,
    /// How many rows the last load found, or why it failed.
    pub state: Load<usize>,
    /// A load is under way: polls and refreshes wait for it rather than pile up.
    loading: bool,
}

impl<R: ListView> Default for ListTable<R> {
    fn default() -> Self {
        Self {
            table: TableModel::new(R::COLUMNS.len(), R::SORT),
            state: Load::Loading,
            loading: false,
        }
    }
}

impl<R: ListView> ListTable<R> {
    /// Marks a load as started: false when one is under way already.
    pub fn begin_load(&mut self) -> bool {
        !std::mem::replace(&mut self.loading, true)
    }

    /// Takes a load's outcome: new rows, or the failure (the last rows stay on screen).
    pub fn finish_load(&mut self, outcome: Result<Vec<R>, String>) {
        self.loading = false;
        match outcome {
            Ok(rows) => {
                self.state = Load::Ready(rows.len());
                self.table.set_rows(rows);
            }
            Err(err) => self.state = Load::Failed(err),
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loading
    }
}

/// What the keys and the draw need of the view on screen, whatever its rows.
pub trait Pane {
    fn cursor(&self) -> usize;
    fn filter(&self) -> Option<&Filter>;
    fn set_filter(&mut self, filter: Option<Filter>);
    fn move_cursor(&mut self, delta: isize);
    fn select(&mut self, position: usize);
    fn cycle_sort(&mut self, step: isize);
    fn reverse_sort(&mut self);
    /// The rows from `start`, at most `page` of them, ready to lay out.
    fn spec(
        &self,
        names: &dyn InstanceNames,
        theme: &Theme,
        start: usize,
        page: usize,
    ) -> TableSpec;
    /// What the table says instead of rows, with its style's role; `None` while rows show.
    fn placeholder(&self, read_only: bool) -> Option<(String, &'static str)>;
}

impl<R: ListView> Pane for ListTable<R> {
    fn cursor(&self) -> usize {
        self.table.cursor()
    }
    fn filter(&self) -> Option<&Filter> {
        self.table.filter()
    }
    fn set_filter(&mut self, filter: Option<Filter>) {
        self.table.set_filter(filter);
    }
    fn move_cursor(&mut self, delta: isize) {
        self.table.move_by(delta);
    }
    fn select(&mut self, position: usize) {
        self.table.select_position(position);
    }
    fn cycle_sort(&mut self, step: isize) {
        self.table.cycle_sort(step);
    }
    fn reverse_sort(&mut self) {
        self.table.reverse_sort();
    }
    fn spec(
        &self,
        names: &dyn InstanceNames,
        theme: &Theme,
        start: usize,
        page: usize,
    ) -> TableSpec {
        let model = &self.table;
        TableSpec {
            titles: R::COLUMNS,
            widths: R::widths(),
            rows: model
                .window(start, page)
                .map(|row| row.cells(names, theme))
                .collect(),
            sort: model.sort,
            cursor: model.cursor(),
            shown: model.visible_len(),
            total: model.rows().len(),
            filter: model.filter().map(|f| f.text().to_owned()),
            priority: R::PRIORITY,
        }
    }
    fn placeholder(&self, read_only: bool) -> Option<(String, &'static str)> {
        let empty = R::EMPTY?;
        if self.table.visible_len() > 0 {
            return None;
        }
        Some(match &self.state {
            _ if !self.table.rows().is_empty() => (empty.filtered.into(), "text.dim"),
            Load::Loading => (empty.loading.into(), "text.dim"),
            Load::Failed(err) => (format!("{}: {err}", empty.failed), "status.error"),
            Load::Ready(_) if read_only => (empty.nothing_read_only.into(), "text.dim"),
            Load::Ready(_) => (empty.nothing.into(), "text.dim"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDTHS: [Constraint; 4] = [
        Constraint::Length(19),
        Constraint::Fill(1),
        Constraint::Length(13),
        Constraint::Length(15),
    ];

    #[test]
    fn the_most_important_columns_stay_and_the_rest_go_as_the_table_narrows() {
        let content = [19, 40, 7, 15];
        let priority = [0, 1, 3, 2];
        // Everything fits, each as wide as its content.
        assert_eq!(
            fit_columns(&WIDTHS, &priority, &content, 200),
            [(0, 19), (1, 40), (2, 7), (3, 15)]
        );
        // The least important goes first; the name keeps what is left.
        assert_eq!(
            fit_columns(&WIDTHS, &priority, &content, 55),
            [(0, 19), (1, 19), (3, 15)]
        );
        // Narrower still: the id and a name of at least twelve columns.
        assert_eq!(
            fit_columns(&WIDTHS, &priority, &content, 35),
            [(0, 19), (1, 15)]
        );
        // The identifying column is never dropped, only cut.
        assert_eq!(fit_columns(&WIDTHS, &priority, &content, 10), [(0, 10)]);
    }

    #[test]
    fn a_smaller_column_further_down_still_takes_room_a_larger_one_could_not() {
        let content = [19, 12, 13, 4];
        let priority = [0, 2, 1, 3];
        // 19 + 1 + 13 fit in 40; the name (12) would not, the four-wide column does.
        assert_eq!(
            fit_columns(&WIDTHS, &priority, &content, 40),
            [(0, 19), (2, 13), (3, 4)]
        );
    }
}
