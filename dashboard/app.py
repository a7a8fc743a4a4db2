"""The movie-lake dashboard: a Streamlit app over the refined layer's DuckDB file, read-only.

    make dashboard        (or: python -m dashboard --port 8501)

Four pages: popularity over the TMDB snapshot dates, the yearly aggregate, the top genres of
each source, and a movie search with the movie's IMDb and TMDB facts side by side. The file
is `DASHBOARD_DUCKDB`, else `<LAKE_URI>/refined/movie_lake.duckdb` (dashboard/queries.py
holds the queries). Results are cached per file version, so a rebuilt file shows at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts dashboard/ first only
    sys.path.insert(0, str(ROOT))

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard import queries  # noqa: E402
from dashboard.queries import RefinedLayerUnavailable  # noqa: E402

# Vega-Lite draws SVG with one labelled element per datum (what a screen reader, and the
# browser test, reads); Streamlit would switch to canvas only for thousands of points.
SVG = {"embedOptions": {"renderer": "svg"}}
IMDB_COLOR = "#c9a227"
SEARCH_LIMIT = 50
TMDB_COLOR = "#01b4e4"


def _file_version(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@st.cache_data(show_spinner=False, max_entries=256)
def _cached(query: str, path: str, version: tuple[int, int], *args: Any) -> Any:
    with queries.connect(Path(path)) as connection:
        return getattr(queries, query)(connection, *args)


def load(query: str, *args: Any) -> Any:
    """Run one query of dashboard/queries.py, cached until the file changes."""
    path = queries.refined_duckdb_path()
    if not path.is_file():
        raise RefinedLayerUnavailable(f"No refined DuckDB file at {path}: {queries.HOW_TO_BUILD}.")
    return _cached(query, str(path), _file_version(path), *args)


def page(render: Callable[[], None]) -> Callable[[], None]:
    """A page that shows why the refined layer cannot be read instead of a traceback."""

    def run() -> None:
        try:
            render()
        except RefinedLayerUnavailable as error:
            st.error(str(error), icon=":material/database_off:")

    run.__name__ = render.__name__
    return run


def _chart(chart: alt.TopLevelMixin, name: str) -> None:
    st.altair_chart(chart.properties(usermeta=SVG), width="stretch", key=f"chart-{name}")


@page
def popularity() -> None:
    facts = load("overview")
    st.title("Popularity over the snapshot dates")
    st.caption("TMDB popularity of the genre's movies, one snapshot a day (fct_movie_popularity).")
    cols = st.columns(5)
    cols[0].metric("Movies", f"{facts['movies']:,}")
    cols[1].metric("On IMDb", f"{facts['on_imdb']:,}")
    cols[2].metric("On TMDB", f"{facts['on_tmdb']:,}")
    cols[3].metric("Snapshot dates", f"{facts['snapshot_dates']:,}")
    latest = facts["latest_snapshot_date"]
    cols[4].metric("Latest snapshot", "none" if latest is None else f"{latest:%Y-%m-%d}")
    if latest is None:
        st.info("No TMDB snapshot yet: land TMDB data (`make ingest`) and run dbt.")
        return

    top_n = st.slider("Movies shown", min_value=5, max_value=25, value=10, step=1)
    top = load("top_movies_by_popularity", top_n)
    history = load("popularity_history", list(top["movie_key"]))
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader(f"Most popular on {latest:%Y-%m-%d}")
        bars = (
            alt.Chart(top)
            .mark_bar(color=TMDB_COLOR)
            .encode(
                x=alt.X("popularity:Q", title="TMDB popularity"),
                y=alt.Y("title:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
                tooltip=[
                    alt.Tooltip("title:N", title="title"),
                    alt.Tooltip("release_year:Q", title="year", format="d"),
                    alt.Tooltip("popularity:Q", format=".3f"),
                    alt.Tooltip("tmdb_vote_average:Q", title="TMDB vote average"),
                    alt.Tooltip("tmdb_vote_count:Q", title="TMDB votes", format=","),
                ],
            )
        )
        _chart(bars, "top")
    with right:
        st.subheader(f"The top {top_n}, day by day")
        history = history.assign(date=history["snapshot_date"].dt.strftime("%Y-%m-%d"))
        lines = (
            alt.Chart(history)
            .mark_line(point=alt.OverlayMarkDef(size=60))
            .encode(
                x=alt.X("date:O", title="snapshot date", axis=alt.Axis(labelAngle=0)),
                y=alt.Y("popularity:Q", title="TMDB popularity"),
                color=alt.Color("title:N", title=None, legend=alt.Legend(labelLimit=180)),
                tooltip=["title:N", "date:O", alt.Tooltip("popularity:Q", format=".3f")],
            )
        )
        _chart(lines, "history")
        if facts["snapshot_dates"] == 1:
            st.caption("One snapshot date so far: each daily TMDB run adds one.")


@page
def years() -> None:
    frame = load("yearly")
    st.title("Release years")
    st.caption(
        "One row per release year (agg_movies__by_release_year): titles, IMDb rating and "
        "votes, and the year's most popular and most voted movie."
    )
    if frame.empty:
        st.info("No movie with a release year yet.")
        return
    first, last = int(frame["release_year"].min()), int(frame["release_year"].max())
    if first < last:
        first, last = st.slider("Release years", first, last, (first, last))
    shown = frame[frame["release_year"].between(first, last)]

    base = alt.Chart(shown).encode(
        x=alt.X(
            "release_year:O",
            title="release year",
            axis=alt.Axis(labelAngle=0, labelOverlap="greedy", labelSeparation=6),
        )
    )
    bars = base.mark_bar(color=TMDB_COLOR, opacity=0.85).encode(
        y=alt.Y("titles:Q", title="titles"),
        tooltip=[
            alt.Tooltip("release_year:O", title="year"),
            alt.Tooltip("titles:Q"),
            alt.Tooltip("titles_on_tmdb:Q", title="on TMDB"),
            alt.Tooltip("average_rating:Q", title="average IMDb rating", format=".2f"),
            alt.Tooltip("total_votes:Q", title="IMDb votes", format=","),
            alt.Tooltip("most_popular_title:N", title="most popular"),
            alt.Tooltip("most_voted_title:N", title="most voted"),
        ],
    )
    rating = base.mark_line(color=IMDB_COLOR, point=alt.OverlayMarkDef(color=IMDB_COLOR)).encode(
        y=alt.Y(
            "average_rating:Q",
            title="average IMDb rating",
            scale=alt.Scale(domain=[0, 10]),
            axis=alt.Axis(titleColor=IMDB_COLOR),
        ),
        tooltip=[
            alt.Tooltip("release_year:O", title="year"),
            alt.Tooltip("average_rating:Q", title="average IMDb rating", format=".2f"),
        ],
    )
    st.subheader("Titles and average IMDb rating per year")
    _chart(alt.layer(bars, rating).resolve_scale(y="independent").properties(height=300), "years")

    st.subheader("The yearly aggregate")
    table = shown.sort_values("release_year", ascending=False)
    st.dataframe(
        table,
        hide_index=True,
        key="years-table",
        placeholder="–",
        column_order=[
            "release_year",
            "titles",
            "titles_on_tmdb",
            "average_rating",
            "total_votes",
            "most_popular_title",
            "most_popular_popularity",
            "most_voted_title",
            "most_voted_votes",
        ],
        column_config={
            "release_year": st.column_config.NumberColumn("year", format="%d"),
            "titles": st.column_config.NumberColumn("titles"),
            "titles_on_tmdb": st.column_config.NumberColumn("on TMDB"),
            "average_rating": st.column_config.NumberColumn("IMDb rating", format="%.2f"),
            "total_votes": st.column_config.NumberColumn("IMDb votes", format="localized"),
            "most_popular_title": st.column_config.TextColumn("most popular"),
            "most_popular_popularity": st.column_config.NumberColumn(
                "its popularity", format="%.2f"
            ),
            "most_voted_title": st.column_config.TextColumn("most voted"),
            "most_voted_votes": st.column_config.NumberColumn("its votes", format="localized"),
        },
    )


@page
def genres() -> None:
    st.title("Top genres")
    st.caption(
        "How many of the genre's movies each other genre also has, in each source's own terms "
        "(bridge_movie_genre, dim_genre): IMDb names genres in English, TMDB numbers them "
        "(names in pt-BR). They are never merged by name."
    )
    controls = st.columns([1, 3])
    include = controls[0].toggle("Count the genre itself", value=False)
    limit = controls[1].slider("Genres shown", min_value=5, max_value=25, value=12)
    columns = st.columns(2, gap="large")
    for column, (source, label), color in zip(
        columns, queries.SOURCES.items(), (IMDB_COLOR, TMDB_COLOR), strict=True
    ):
        frame = load("top_genres", source, include, limit)
        with column:
            st.subheader(f"{label} genres")
            if frame.empty:
                st.info(f"No {label} genre besides the genre itself.")
                continue
            bars = (
                alt.Chart(frame)
                .mark_bar(color=color)
                .encode(
                    x=alt.X("movies:Q", title="movies"),
                    y=alt.Y("genre:N", sort="-x", title=None),
                    tooltip=[
                        "genre:N",
                        "movies:Q",
                        alt.Tooltip("share_of_movies:Q", title=f"share of {label} movies",
                                    format=".0%"),
                    ],
                )
            )  # fmt: skip
            _chart(bars, f"genres-{source}")


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "–"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _number(value: Any, fmt: str = ",") -> str | None:
    return None if value is None else format(value, fmt)


def _year(value: Any) -> str:
    return "?" if value is None or pd.isna(value) else str(int(value))


def _date(value: Any) -> str | None:
    return None if value is None else f"{pd.Timestamp(value):%Y-%m-%d}"


def comparison_rows(movie: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The facts of one movie of rpt_movies_wide as (fact, IMDb's, TMDB's) rows."""
    imdb_id, tmdb_id = movie["imdb_id"], movie["tmdb_id"]
    snapshots = movie["snapshot_count"]
    return [
        (
            "id",
            imdb_id and f"[{imdb_id}](https://www.imdb.com/title/{imdb_id}/)",
            tmdb_id and f"[{int(tmdb_id)}](https://www.themoviedb.org/movie/{int(tmdb_id)})",
        ),
        ("title", movie["imdb_primary_title"], movie["tmdb_title"]),
        ("original title / language", movie["imdb_original_title"], movie["original_language"]),
        (
            "released",
            None if movie["release_year"] is None or not movie["is_known_to_imdb"]
            else _year(movie["release_year"]),
            _date(movie["release_date"]),
        ),
        ("genres", movie["imdb_genres"], movie["tmdb_genres"]),
        (
            "rating",
            _number(movie["imdb_average_rating"], ".1f"),
            _number(movie["latest_tmdb_vote_average"], ".1f"),
        ),
        ("votes", _number(movie["imdb_num_votes"]), _number(movie["latest_tmdb_vote_count"])),
        ("popularity", None, _number(movie["latest_popularity"], ".3f")),
        (
            "snapshots",
            None,
            snapshots
            and f"{snapshots}: {_date(movie['first_snapshot_date'])} to "
            f"{_date(movie['latest_snapshot_date'])}",
        ),
        ("credited artists", movie["artist_names"], None),
        ("budget / revenue (USD)", None, _money(movie["tmdb_budget"], movie["tmdb_revenue"])),
    ]  # fmt: skip


def _money(budget: Any, revenue: Any) -> str | None:
    if not budget and not revenue:
        return None
    return f"{_number(budget) if budget else '?'} / {_number(revenue) if revenue else '?'}"


@page
def search() -> None:
    st.title("Movie search")
    st.caption("One movie's facts from IMDb and TMDB side by side (rpt_movies_wide).")
    text = st.text_input(
        "Title (IMDb's, TMDB's pt-BR or the original) or an IMDb or TMDB id",
        key="q",
        bind="query-params",
        placeholder="e.g. tt0123456 or part of a title",
    )
    if not text or not text.strip():
        st.info("Type part of a title, or an id, and press Enter.")
        return
    matches = load("search_movies", text, SEARCH_LIMIT)
    if matches.empty:
        st.warning(f"No movie matches {text.strip()!r}.")
        return
    labels = {
        row.movie_key: f"{row.title} ({_year(row.release_year)})" for row in matches.itertuples()
    }
    if len(matches) == SEARCH_LIMIT:
        found = f"The {SEARCH_LIMIT} best of more matches (most popular first): narrow the search."
    else:
        found = f"{len(matches)} movie{'s' if len(matches) != 1 else ''} match."
    movie_key = st.selectbox("Movie", list(labels), format_func=labels.__getitem__, help=found)
    st.caption(found)
    movie = load("movie_facts", movie_key)
    if movie is None:
        st.warning("That movie is no longer in the refined layer: search again.")
        return
    runtime, artists = movie["runtime_minutes"], movie["artist_count"]
    st.header(f"{movie['title']} ({_year(movie['release_year'])})")
    st.caption(
        " · ".join(
            part
            for part in (
                None if runtime is None else f"{int(runtime)} min",
                "on IMDb" if movie["is_known_to_imdb"] else "not on IMDb's snapshot",
                "on TMDB" if movie["is_known_to_tmdb"] else "not on TMDB (genre)",
                f"{artists} credited artist{'s' if artists != 1 else ''}" if artists else None,
            )
            if part
        )
    )
    lines = ["| | IMDb | TMDB |", "| --- | --- | --- |"]
    for fact, imdb, tmdb in comparison_rows(movie):
        lines.append(f"| **{fact}** | {_cell(imdb)} | {_cell(tmdb)} |")
    st.markdown("\n".join(lines))
    if movie["tmdb_overview"]:
        st.caption(f"TMDB overview: {movie['tmdb_overview']}")
    history = load("popularity_history", [movie_key])
    if not history.empty:
        st.subheader("Popularity over the snapshot dates")
        history = history.assign(date=history["snapshot_date"].dt.strftime("%Y-%m-%d"))
        line = (
            alt.Chart(history)
            .mark_line(point=alt.OverlayMarkDef(size=60, color=TMDB_COLOR), color=TMDB_COLOR)
            .encode(
                x=alt.X("date:O", title="snapshot date", axis=alt.Axis(labelAngle=0)),
                y=alt.Y("popularity:Q", title="TMDB popularity"),
                tooltip=["date:O", alt.Tooltip("popularity:Q", format=".3f"), "popularity_rank:Q"],
            )
            .properties(height=220)
        )
        _chart(line, "movie-history")


def main() -> None:
    st.set_page_config(page_title="movie-lake", page_icon=":material/movie:", layout="wide")
    navigation = st.navigation(
        [
            st.Page(popularity, title="Popularity", icon=":material/trending_up:", default=True),
            st.Page(years, title="Release years", icon=":material/calendar_month:",
                    url_path="years"),
            st.Page(genres, title="Top genres", icon=":material/category:", url_path="genres"),
            st.Page(search, title="Movie search", icon=":material/search:", url_path="search"),
        ]
    )  # fmt: skip
    with st.sidebar:
        try:
            path = queries.refined_duckdb_path()
            st.caption(f"Refined layer: `{path}` (read-only)")
        except RefinedLayerUnavailable as error:
            st.caption(str(error))
    navigation.run()


main()
