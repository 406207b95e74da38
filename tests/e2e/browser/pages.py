"""The candidate page and the dashboard as the tests drive them: each step waits for what a
person would see."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

from playwright.async_api import BrowserContext, Locator, Page, expect

from engine.model import Form, Part
from engine.server import keys
from engine.sitting import sitting_id_for
from tests.e2e.conftest import Running


def fresh_code(running: Running, exam_id: str, site: str | None = None) -> tuple[str, str]:
    """An access code nobody used yet in this test, of a candidate at `site` if given."""
    used = running._used.setdefault(exam_id, set())
    path = running.config.data_dir / "access-codes" / f"{exam_id}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["candidate"] not in used and site in (None, row["site"]):
                used.add(row["candidate"])
                return row["candidate"], row["code"]
    raise LookupError(f"no unused code left for {exam_id} at {site}")


@dataclass
class Candidate:
    """One candidate's page, with the id and code they signed in with."""

    page: Page
    running: Running
    exam_id: str
    candidate_id: str
    code: str
    errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(
        cls, context: BrowserContext, running: Running, exam_id: str, site: str | None = None
    ) -> Candidate:
        candidate_id, code = fresh_code(running, exam_id, site)
        page = await context.new_page()
        candidate = cls(page, running, exam_id, candidate_id, code)
        page.on("pageerror", lambda error: candidate.errors.append(str(error)))
        await page.goto(running.url + "/")
        return candidate

    def screen(self, name: str) -> Locator:
        return self.page.locator(f"#screen-{name}")

    async def sign_in(self) -> None:
        await self.page.locator("#access-code").fill(self.code)
        await self.page.locator("#signin-button").click()

    async def choose_language(self, name: str) -> None:
        await expect(self.screen("language")).to_be_visible()
        await self.page.get_by_role("radio", name=name).check()
        await self.page.locator("#language-form button[type=submit]").click()

    async def check_devices(self) -> None:
        await expect(self.screen("devices")).to_be_visible()
        await self.page.locator("#devices-check").click()
        for device in ("camera", "microphone", "connection"):
            await expect(self.page.locator(f"#device-{device}")).to_have_attribute(
                "data-state", "ok"
            )
        await self.page.locator("#devices-continue").click()

    async def accept_rules_and_start(self) -> None:
        await expect(self.screen("rules")).to_be_visible()
        await self.page.locator("#rules-accept").check()
        await self.page.locator("#start-button").click()
        await expect(self.screen("test")).to_be_visible()

    async def answer(self, position: int) -> None:
        """Choose the option at this position on the current question."""
        await self.page.locator("#q-options-list input[type=radio]").nth(position).check()

    async def expect_save_state(self, state: str) -> None:
        await expect(self.page.locator("#q-save")).to_have_attribute("data-state", state)

    async def next(self) -> None:
        await self.page.locator("#next-button").click()

    def part(self, part_id: str | None = None) -> Part:
        exam = self.running.hall.exams[self.exam_id].exam
        return exam.part(part_id) if part_id else exam.parts[0]

    def form(self, part_id: str | None = None) -> Form:
        """The form the server made for this candidate: the order the page shows."""
        runtime = self.running.hall.exams[self.exam_id]
        return runtime.form(self.candidate_id, self.part(part_id))

    def sitting_id(self, part_id: str | None = None) -> str:
        return sitting_id_for(self.exam_id, self.candidate_id, self.part(part_id).id)

    async def stored_choices(self, part_id: str | None = None) -> dict[str, int | None]:
        """What the server holds on disk, as the option positions this candidate was shown."""
        order = {item.item_id: item.option_order for item in self.form(part_id).items}
        stored = await self.running.app[keys.STORE].load_sitting(self.sitting_id(part_id))
        assert stored is not None, "the server has no record of this sitting"
        return {
            answer.item_id: None
            if answer.choice is None
            else order[answer.item_id].index(answer.choice)
            for answer in stored.answers
        }


def staff_password(running: Running, exam_id: str, login: str) -> str:
    """The password the server made for a staff member on first load."""
    path = running.config.data_dir / "access-codes" / f"{exam_id}-staff.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["login"] == login:
                return row["password"]
    raise LookupError(f"no staff member {login} in {path}")


@dataclass
class Dashboard:
    """The proctor's or observer's dashboard page."""

    page: Page
    running: Running
    errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(
        cls, context: BrowserContext, running: Running, exam_id: str, login: str
    ) -> Dashboard:
        page = await context.new_page()
        board = cls(page, running)
        page.on("pageerror", lambda error: board.errors.append(str(error)))
        await page.goto(running.url + "/proctor")
        await page.locator("#login").fill(login)
        await page.locator("#password").fill(staff_password(running, exam_id, login))
        await page.locator("#signin-button").click()
        await expect(page.locator("#screen-board")).to_be_visible()
        return board

    def tile(self, sitting_id: str) -> Locator:
        return self.page.locator(f'.tile[data-sitting="{sitting_id}"]')

    def tiles(self) -> Locator:
        return self.page.locator("#tiles > .tile")

    async def open_detail(self, sitting_id: str) -> None:
        await self.tile(sitting_id).locator(".tile-open").click()
        await expect(self.page.locator("#detail")).to_be_visible()

    def action(self, kind: str) -> Locator:
        return self.page.locator(f'#actions form[data-kind="{kind}"]')

    async def act(self, kind: str, **fields: str) -> None:
        form = self.action(kind)
        for name, value in fields.items():
            await form.locator(f'[name="{name}"]').fill(value)
        await form.locator("button[type=submit]").click()

    async def expect_result(self, state: str, text: str | re.Pattern[str]) -> None:
        result = self.page.locator("#action-result")
        await expect(result).to_have_attribute("data-state", state)
        await expect(result).to_have_text(text)
