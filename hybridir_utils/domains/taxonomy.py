"""The topic-domain taxonomy: which domains exist, what each covers, and the multilingual descriptions that
define them for the zero-shot classifier of :mod:`domains.labelling`.

Kept apart from the classifier so that the definitions read (and get reviewed) as one piece, and so that modules
needing only the names and their checks (:mod:`parameters`, the training pools of
:mod:`domains.pools`) import no classifier code. :class:`errors.DomainError` is the error of every domain input.

One label per article; a person or organisation takes the domain of what it is known for:

| domain | covers |
|---|---|
| science | natural and formal sciences, technology and engineering, medicine and health |
| news | current affairs and public life: sport, politics, government and law, business and economy, media companies |
| history | past eras and events: empires, dynasties, wars, historical peoples and rulers |
| geography | places: countries, regions, cities, rivers, mountains, natural landmarks |
| culture | arts, literature, music, film and TV, religion, philosophy, society and social issues |
| education | schools, universities, teaching and education systems |
| other | the classifier is unsure (top-2 margin below ``min_margin``) |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hybridir_utils.errors import DomainError

if TYPE_CHECKING:
    import pandas as pd

DOMAINS: dict[str, str] = {
    "science": "natural and formal sciences, technology and engineering, medicine and health",
    "news": "current affairs and public life: sport, politics, government and law, business and economy, media",
    "history": "past eras and events: empires, dynasties, wars, historical peoples and rulers",
    "geography": "places: countries, regions, cities, rivers, mountains, natural landmarks",
    "culture": "arts, literature, music, film and TV, religion, philosophy, society and social issues",
    "education": "schools, universities, teaching and education systems",
    "other": "none of the above, or the classifier is unsure",
}
DOMAIN_NAMES: tuple[str, ...] = tuple(DOMAINS)
#: the domains the classifier scores ("other" is the abstain label, never a prototype)
CLASS_NAMES: tuple[str, ...] = tuple(d for d in DOMAIN_NAMES if d != "other")

# Several phrasings per domain, in several languages, so that no single wording or language dominates.
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "science": (
        "an encyclopedia article about natural science: physics, chemistry, biology, astronomy or geology",
        "an encyclopedia article about mathematics or computer science",
        "an encyclopedia article about technology, engineering, machines or inventions",
        "an encyclopedia article about medicine, diseases, the human body or health",
        "an encyclopedia article about a scientist, an inventor or an engineer",
        "ein Lexikonartikel über Naturwissenschaft, Technik oder Medizin",
        "un artículo de enciclopedia sobre ciencia, tecnología o medicina",
        "关于自然科学、数学、技术或医学的百科文章",
        "مقال موسوعي عن العلوم أو التكنولوجيا أو الطب",
        "विज्ञान, प्रौद्योगिकी या चिकित्सा के बारे में एक विश्वकोश लेख",
        "энциклопедическая статья о науке, технике или медицине",
        "bài viết bách khoa về khoa học, công nghệ hoặc y học",
    ),
    "news": (
        "an encyclopedia article about a sports event, a sports team or a league",
        "an encyclopedia article about politics, elections, a parliament, government or law",
        "an encyclopedia article about a company, business, the economy or finance",
        "an encyclopedia article about a television network, broadcaster, newspaper or media company",
        "an encyclopedia article about a politician, an athlete or a business leader",
        "an encyclopedia article about a recent event: an election, a disaster, an accident or a scandal",
        "ein Lexikonartikel über Sport, Politik, Wirtschaft oder Medien",
        "un artículo de enciclopedia sobre deportes, política, economía o medios de comunicación",
        "关于体育、政治、商业或媒体的百科文章",
        "مقال موسوعي عن الرياضة أو السياسة أو الاقتصاد أو الإعلام",
        "खेल, राजनीति, व्यापार या मीडिया के बारे में एक विश्वकोश लेख",
        "энциклопедическая статья о спорте, политике, экономике или СМИ",
        "bài viết bách khoa về thể thao, chính trị, kinh doanh hoặc truyền thông",
    ),
    "history": (
        "an encyclopedia article about a historical period, an empire or a dynasty",
        "an encyclopedia article about a war, a battle or a revolution in the past",
        "an encyclopedia article about a medieval or ancient people, king or conqueror",
        "ein Lexikonartikel über Geschichte: ein Reich, eine Dynastie oder einen Krieg",
        "un artículo de enciclopedia sobre historia: un imperio, una dinastía o una guerra",
        "关于历史的百科文章：帝国、王朝或战争",
        "مقال موسوعي عن التاريخ: إمبراطورية أو سلالة حاكمة أو حرب",
        "इतिहास के बारे में एक विश्वकोश लेख: साम्राज्य, राजवंश या युद्ध",
        "энциклопедическая статья об истории: империя, династия или война",
        "bài viết bách khoa về lịch sử: đế chế, triều đại hoặc chiến tranh",
    ),
    "geography": (
        "an encyclopedia article about a city, its districts, population and economy",
        "an encyclopedia article about a country, a state or a region",
        "an encyclopedia article about a river, a mountain, a lake, a forest or a landscape",
        "ein Lexikonartikel über einen Ort: eine Stadt, ein Land, eine Region oder einen Fluss",
        "un artículo de enciclopedia sobre un lugar: una ciudad, un país, una región o un río",
        "关于地理位置的百科文章：城市、国家、地区或河流",
        "مقال موسوعي عن مكان: مدينة أو دولة أو منطقة أو نهر",
        "किसी स्थान के बारे में एक विश्वकोश लेख: शहर, देश, क्षेत्र या नदी",
        "энциклопедическая статья о месте: город, страна, регион или река",
        "bài viết bách khoa về một địa danh: thành phố, quốc gia, vùng hoặc sông",
    ),
    "culture": (
        "an encyclopedia article about art, painting, a museum, music, literature, film or television series",
        "an encyclopedia article about religion, a church, a religious movement or theology",
        "an encyclopedia article about philosophy, ideology, society or social issues",
        "an encyclopedia article about a film, an actor, a singer, a video game or a television series",
        "ein Lexikonartikel über Kunst, Literatur, Musik, Religion oder Gesellschaft",
        "un artículo de enciclopedia sobre arte, literatura, música, religión o sociedad",
        "关于艺术、文学、音乐、宗教或社会的百科文章",
        "مقال موسوعي عن الفن أو الأدب أو الموسيقى أو الدين أو المجتمع",
        "कला, साहित्य, संगीत, धर्म या समाज के बारे में एक विश्वकोश लेख",
        "энциклопедическая статья об искусстве, литературе, музыке, религии или обществе",
        "bài viết bách khoa về nghệ thuật, văn học, âm nhạc, tôn giáo hoặc xã hội",
    ),
    "education": (
        "an encyclopedia article about a university, a college or a school",
        "an encyclopedia article about teaching, teachers, students and education systems",
        "ein Lexikonartikel über eine Universität, eine Schule oder das Bildungswesen",
        "un artículo de enciclopedia sobre una universidad, una escuela o la educación",
        "关于大学、学校或教育的百科文章",
        "مقال موسوعي عن جامعة أو مدرسة أو التعليم",
        "किसी विश्वविद्यालय, विद्यालय या शिक्षा के बारे में एक विश्वकोश लेख",
        "энциклопедическая статья об университете, школе или образовании",
        "bài viết bách khoa về trường đại học, trường học hoặc giáo dục",
    ),
}


def check_domain(name: str, allow_other: bool = True) -> str:
    """Return ``name`` if it is a known domain, else raise naming it and listing the valid ones."""
    valid = DOMAIN_NAMES if allow_other else CLASS_NAMES
    if name not in valid:
        raise DomainError(f"unknown domain {name!r}; valid domains: {', '.join(valid)}")
    return name


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DomainError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")
