"""The dashboard served as `make dashboard` serves it, each page loaded in headless Chromium.

The server is `python -m dashboard` on a free 127.0.0.1 port over a refined file that real dbt
built from the fixture lake of the dbt tests. Vega-Lite draws the charts as SVG with one
labelled element per datum (its ARIA labels): the tests read those labels to check that each
chart drew the refined layer's rows, and compare them with the DuckDB file itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from headless_browser import Chromium, start_driver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 45


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dashboard_url(dashboard_refined_duckdb: Path, tmp_path_factory: pytest.TempPathFactory):
    """`python -m dashboard` (what `make dashboard` runs) on a free loopback port; stopped after."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("dashboard_server") / "server.log"
    env = {**os.environ, "DASHBOARD_DUCKDB": str(dashboard_refined_duckdb)}
    env["PYTHONPATH"] = str(ROOT)
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not come up on {url}:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(chromium: Chromium, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_driver(chromium, tmp_path_factory.mktemp("chromium_profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def refined(dashboard_refined_duckdb: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The file the dashboard reads, opened read-only for the expected values."""
    with duckdb.connect(str(dashboard_refined_duckdb), read_only=True) as connection:
        connection.execute("use movie_lake.refined")
        yield connection


def _wait(browser: Any, condition: Any, what: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.2).until(condition)
    except TimeoutException:
        exceptions = browser.find_elements("css selector", '[data-testid="stException"]')
        detail = exceptions[0].text if exceptions else browser.page_source[-2000:]
        pytest.fail(f"timed out waiting for {what} on {browser.current_url}:\n{detail}")


def _parse_label(label: str) -> dict[str, str]:
    fields = {}
    for part in label.split("; "):
        name, _, value = part.partition(": ")
        fields[name.strip()] = value
    return fields


def chart_marks(browser: Any, expected_charts: int) -> list[list[dict[str, str]]]:
    """Wait until the page shows `expected_charts` Vega-Lite charts, each with drawn marks,
    then give each chart's data marks (bars and points) as {field: value} dicts."""
    selector = '[data-testid="stVegaLiteChart"]'

    def drawn(driver: Any) -> list[Any] | bool:
        charts = driver.find_elements("css selector", selector)
        if len(charts) != expected_charts:
            return False
        for chart in charts:
            if not chart.find_elements("css selector", "svg [aria-roledescription='bar'], "
                                       "svg [aria-roledescription='point']"):  # fmt: skip
                return False
        return charts

    charts = _wait(browser, drawn, f"{expected_charts} drawn charts")
    assert not browser.find_elements("css selector", '[data-testid="stException"]')
    return [
        [
            _parse_label(mark.get_attribute("aria-label"))
            for mark in chart.find_elements(
                "css selector", "[aria-roledescription='bar'], [aria-roledescription='point']"
            )
        ]
        for chart in charts
    ]


def test_the_popularity_page_charts_the_latest_top_movies_and_their_days(
    browser: Any, dashboard_url: str, refined: duckdb.DuckDBPyConnection
) -> None:
    browser.get(dashboard_url + "/")
    top, history = chart_marks(browser, 2)
    latest = refined.execute("select max(snapshot_date) from fct_movie_popularity").fetchone()[0]
    expected_top = refined.execute(
        "select movies.title, fact.popularity from fct_movie_popularity as fact "
        "join rpt_movies_wide as movies using (movie_key) where snapshot_date = ? "
        "order by popularity desc, title limit 10",
        [latest],
    ).fetchall()
    drawn_top = [(bar["title"], float(bar["TMDB popularity"])) for bar in top]
    assert drawn_top == expected_top
    assert drawn_top[0] == ("The Haunting Hour", 35.5)  # 1001 on the fixture's second day
    # Every snapshot date of each of those movies is a point of the day-by-day chart.
    expected_points = set(
        refined.execute(
            "select movies.title, strftime(fact.snapshot_date, '%Y-%m-%d'), fact.popularity "
            "from fct_movie_popularity as fact join rpt_movies_wide as movies using (movie_key) "
            "where list_contains(?, movies.title)",
            [[title for title, _ in expected_top]],
        ).fetchall()
    )
    drawn_points = {
        (point["title"], point["snapshot date"], float(point["TMDB popularity"]))
        for point in history
    }
    assert drawn_points == expected_points
    haunting = sorted(
        (date, pop) for title, date, pop in drawn_points if title == "The Haunting Hour"
    )
    assert [pop for _, pop in haunting] == [30.0, 35.5]  # the fixture's two days
    metrics = browser.find_elements("css selector", '[data-testid="stMetricValue"]')
    assert [metric.text for metric in metrics][3:] == ["2", f"{latest:%Y-%m-%d}"]


def test_the_years_page_charts_and_tabulates_the_yearly_aggregate(
    browser: Any, dashboard_url: str, refined: duckdb.DuckDBPyConnection
) -> None:
    browser.get(dashboard_url + "/years")
    (marks,) = chart_marks(browser, 1)
    bars = {int(m["release year"]): int(m["titles"]) for m in marks if "titles" in m}
    expected = dict(
        refined.execute("select release_year, titles from agg_movies__by_release_year").fetchall()
    )
    assert bars == expected
    assert bars[1999] == 2  # The Haunting Hour and Night Crawlers
    ratings = {
        int(m["release year"]): float(m["average IMDb rating"]) for m in marks if "titles" not in m
    }
    assert ratings == {
        year: pytest.approx(rating)
        for year, rating in refined.execute(
            "select release_year, average_rating from agg_movies__by_release_year "
            "where average_rating is not null"
        ).fetchall()
    }
    # The table (Streamlit's data grid keeps an accessible copy of its visible rows).
    rows = _wait(
        browser,
        lambda driver: driver.find_elements(
            "css selector", '[data-testid="stDataFrame"] table tbody tr'
        ),
        "the table's rows",
    )
    cells = [
        [cell.get_attribute("textContent") for cell in row.find_elements("css selector", "td")]
        for row in rows
    ]
    assert len(cells) == len(expected)
    years_shown = [row[0] for row in cells]
    assert years_shown == [str(year) for year in sorted(expected, reverse=True)]
    row_1999 = cells[years_shown.index("1999")]
    assert "The Haunting Hour" in row_1999  # the most popular of 1999
    assert "2" in row_1999 and "6.55" in row_1999  # titles, average IMDb rating


def test_the_genres_page_charts_each_sources_genres_by_movie_count(
    browser: Any, dashboard_url: str, refined: duckdb.DuckDBPyConnection
) -> None:
    browser.get(dashboard_url + "/genres")
    imdb, tmdb = chart_marks(browser, 2)
    for source, marks in (("imdb", imdb), ("tmdb", tmdb)):
        expected = dict(
            refined.execute(
                "select coalesce(genre_name, 'genre ' || genre_code), count(distinct movie_key) "
                "from bridge_movie_genre join dim_genre using (genre_key) "
                "where dim_genre.genre_source = ? and not is_selected_genre group by 1",
                [source],
            ).fetchall()
        )
        assert {bar["genre"]: int(bar["movies"]) for bar in marks} == expected, source
    assert {bar["genre"] for bar in imdb} >= {"Thriller", "Mystery"}
    assert "Horror" not in {bar["genre"] for bar in imdb}  # the genre itself is left out


def test_search_shows_a_movies_imdb_and_tmdb_facts_side_by_side(
    browser: Any, dashboard_url: str
) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(dashboard_url + "/search")
    field = _wait(
        browser,
        lambda driver: driver.find_elements("css selector", '[data-testid="stTextInput"] input'),
        "the search field",
    )[0]
    field.send_keys("assombrada", Keys.ENTER)  # TMDB's pt-BR title of tt0000101

    def facts_table(driver: Any) -> Any:
        for table in driver.find_elements("css selector", '[data-testid="stMarkdown"] table'):
            if "tt0000101" in table.get_attribute("textContent"):
                return table
        return False

    table = _wait(browser, facts_table, "the facts of The Haunting Hour")
    header = [cell.text for cell in table.find_elements("css selector", "thead th")]
    assert header[1:] == ["IMDb", "TMDB"]
    facts = {
        cells[0]: (cells[1], cells[2])
        for row in table.find_elements("css selector", "tbody tr")
        if (cells := [cell.text for cell in row.find_elements("css selector", "td")])
    }
    assert facts["id"] == ("tt0000101", "1001")
    assert facts["title"] == ("The Haunting Hour", "A Hora Assombrada")
    assert facts["genres"] == ("Horror, Thriller", "Terror, Thriller")
    assert facts["rating"] == ("7.1", "7.1")
    assert facts["votes"] == ("1,200", "110")
    assert facts["popularity"] == ("–", "35.500")
    assert facts["credited artists"][0] == "Alice Moreau, Bruno Lima, Carla Diaz"
    assert "?q=assombrada" in browser.current_url  # the search is a link one can share
    (points,) = chart_marks(browser, 1)
    assert sorted(float(p["TMDB popularity"]) for p in points) == [30.0, 35.5]
