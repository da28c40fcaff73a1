"""The demo's participants in the chat: each scripted person presses and types through the
Bot API stand-in's side door, in their own language, as a person on a phone would."""

from __future__ import annotations

from collections.abc import Callable

from bot.consultations.profile import load_profile_questions
from bot.demo.people import Persona
from bot.kernel import i18n
from bot.kernel.config import Settings
from standin import BotApiStandIn
from standin.models import BotMessage

WAIT = 20.0  # seconds any single step may take before the demo gives up with a clear error


class Script:
    """Plays people in the chat through the stand-in's side door, each in their own language:
    the words they look for and the buttons they press come from the catalogs and the sets'
    translations, as the bot's do."""

    def __init__(self, standin: BotApiStandIn, settings: Settings) -> None:
        self.standin = standin
        self.profile = load_profile_questions(settings.paths.templates)

    @staticmethod
    def said(person: Persona, message: str, **values: object) -> str:
        """`message` as the bot says it to `person` (a catalog msgid, %(name)s values)."""
        with i18n.speaking(person.language):
            text = i18n.gettext(message)
        return text % values if values else text

    def profile_labels(self, person: Persona) -> dict[str, dict[str, str]]:
        """Each profile question's option labels (by id) in the person's language."""
        with i18n.speaking(person.language):
            return {q.key: {o.id: o.local_label for o in q.options} for q in self.profile}

    async def wait(self, chat: int, predicate: Callable[[BotMessage], bool]) -> BotMessage:
        return await self.standin.wait_for_message(chat, predicate=predicate, timeout=WAIT)

    async def say(
        self, user: int, text: str, predicate: Callable[[BotMessage], bool]
    ) -> BotMessage:
        self.standin.send_text(user, text)
        return await self.wait(user, predicate)

    async def press(
        self, user: int, message: BotMessage, label: str, predicate: Callable[[BotMessage], bool]
    ) -> BotMessage:
        self.standin.press(user, message, label)
        return await self.wait(user, predicate)

    async def join(self, person: Persona, code: str) -> None:
        uid = person.user_id
        # The language of their Telegram app: the bot offers the matching language first.
        self.standin.set_language(uid, "cy" if person.language == "cy" else "en-GB")
        self.standin.send_text(uid, f"/start {code}", first_name=person.first_name)
        language = i18n.name_of(person.language)
        choice = await self.wait(uid, lambda m: has_button(m, language))
        agree = self.said(person, "Agree")
        notice = await self.press(uid, choice, language, lambda m: has_button(m, agree))
        labels = self.profile_labels(person)

        def profile_key(message: BotMessage) -> str | None:
            return next((k for k in labels if _asks(message, labels[k])), None)

        message = await self.press(uid, notice, agree, lambda m: profile_key(m) is not None)
        while (key := profile_key(message)) is not None:
            message = await self.press(
                uid,
                message,
                labels[key][person.profile[key]],
                lambda m, seen=message.message_id: m.message_id > seen and not m.edited,
            )

    async def answer_round(
        self, person: Persona, consultation: dict, *, stop_after: int | None = None
    ) -> None:
        uid = person.user_id
        start, resume = self.said(person, "Start now"), self.said(person, "Continue")
        intro = await self.wait(uid, lambda m: has_button(m, start) or has_button(m, resume))
        questions = consultation["questions"]
        total = len(questions)
        prompt = await self.press(
            uid,
            intro,
            start if has_button(intro, start) else resume,
            self._prompt(person, 1, total),
        )
        for number, question in enumerate(questions, start=1):
            if stop_after is not None and number > stop_after:
                return
            follow = (
                self._prompt(person, number + 1, total) if number < total else self._summary(person)
            )
            prompt = await self._answer(person, consultation, question, prompt, follow)
        if person.changes_answer:
            # Thinks again about how equal a partner they feel, and says so.
            now = self.said(person, "Your answer now: %(current)s", current="")
            changed = await self.press(
                uid,
                prompt,
                self.said(person, "Change %(number)s", number=2),
                lambda m: now in m.text,
            )
            better = str(min(5, person.equal_partner + 2))
            await self.press(uid, changed, better, self._summary(person))

    async def _answer(
        self,
        person: Persona,
        consultation: dict,
        question: dict,
        prompt: BotMessage,
        follow: Callable[[BotMessage], bool],
    ) -> BotMessage:
        uid = person.user_id
        key = question["id"]
        words = consultation.get("translations", {}).get(person.language, {})
        labels = {
            option["id"]: words.get(f"{key}.o.{option['id']}", option["label"])
            for option in question.get("options") or []
        }
        if question["type"] == "single":
            return await self.press(uid, prompt, labels[person.asked_when], follow)
        if question["type"] == "scale":
            return await self.press(uid, prompt, str(person.equal_partner), follow)
        if question["type"] == "multi":
            chosen = {
                "partnership_barriers": person.partnership_barriers,
                "own_barriers": person.own_barriers,
                "what_helps": person.what_helps,
            }[key]
            for option in chosen:
                label = labels[option]
                await self.press(
                    uid,
                    prompt,
                    label,
                    lambda m, lb=label, mid=prompt.message_id: (
                        m.message_id == mid and has_button(m, f"✓ {lb}")
                    ),
                )
            return await self.press(uid, prompt, self.said(person, "Done"), follow)
        if person.obstacle is None:
            return await self.press(uid, prompt, self.said(person, "Skip"), follow)
        return await self.say(uid, person.obstacle, follow)

    def _prompt(self, person: Persona, number: int, total: int) -> Callable[[BotMessage], bool]:
        """Question `number` on the round's card (sent, or the card edited on to it)."""
        place = self.said(person, "%(number)s of %(total)s", number=number, total=total)
        return lambda m: place in m.text and bool(m.buttons)

    def _summary(self, person: Persona) -> Callable[[BotMessage], bool]:
        thanks = self.said(person, "Thank you!")
        return lambda m: thanks in m.text


def has_button(message: BotMessage, label: str) -> bool:
    return any(button.get("text") == label for button in message.buttons)


def _asks(message: BotMessage, labels: dict[str, str]) -> bool:
    return all(has_button(message, label) for label in labels.values() if label) and bool(labels)
