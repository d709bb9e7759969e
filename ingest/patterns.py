"""Every regular expression the cleaners and metadata extraction use, in one place.

They describe kinds of noise by shape (a whole line in brackets, a handle-and-date attribution,
a trailing photo credit), never by a particular site's wording."""

from __future__ import annotations

import re

_I = re.IGNORECASE
_M = re.MULTILINE

# ------------------------------------------------------------------ structure
# A block: consecutive non-blank lines; blank lines and form feeds (page breaks) separate blocks.
BLOCK = re.compile(r"[^\n\f]*[^\s][^\n\f]*(?:\n[^\n\f]*[^\s][^\n\f]*)*")
LINE = re.compile(r"[^\n]*")
LIST_ITEM = re.compile(r"^\s*(?:[-–—•*·▪◦]\s+|\(?\d{1,3}[.)]\s|\(?[a-z][.)]\s)")
STARTS_LOWER = re.compile(r"^[\"'“‘(]?[a-z]")
WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")

# ------------------------------------------------------------------ whole-block noise
PLACEHOLDER = re.compile(r"^\[\s*[^\[\]\n]{0,80}\s*\]$")
PAGE_NUMBER = re.compile(
    r"^(?:(?:page|p\.|pg\.?|seite|sida|página)\s*\d{1,4}(?:\s*(?:of|/|von|av|de)\s*\d{1,4})?"
    r"|\d{1,4}\s*(?:of|/)\s*\d{1,4}|[-–—]\s*\d{1,4}\s*[-–—]|\d{1,3})$",
    _I,
)
AD_SLOT = re.compile(r"^(?=[a-z0-9_-]*\d)[a-z][a-z0-9]*(?:[-_][a-z0-9]+){2,}$")
ADVERTISEMENT = re.compile(
    r"^(?:advertisement|advertising|sponsored(?: content)?|ad|anzeige|annons|publicité"
    r"|(?:story|article) continues below(?: this)? (?:advertisement|ad)"
    r"|scroll to continue(?: with content)?)$",
    _I,
)
READ_MORE = re.compile(
    r"^(?:read more|read also|see also|continue reading|read the full (?:story|article)"
    r"|more on this(?: story)?|läs mer|lire aussi|mehr zum thema|keep reading)\b[:.…»›>\s]*"
    r"(?:.{0,160})$",
    _I,
)
NEWSLETTER = re.compile(
    r"^\W*(?:click here to |please |want more\W+)?"
    r"(?:sign up|subscribe|join|register|get (?:our|the))"
    r"\b.{0,60}\b(?:newsletters?|mailing list|e-?mail (?:alerts|updates)|inbox|digest)\b",
    _I,
)
DONATION = re.compile(
    r"\b(?:donat(?:e|ion)s?|make a (?:charitable )?(?:gift|contribution)|support (?:us|our "
    r"(?:work|journalism|reporting))|become a (?:member|supporter|patron|subscriber))\b",
    _I,
)
RIGHTS = re.compile(
    r"(?:^\s*(?:copyright\s*(?:©|\(c\)|\d{4})|©\s*\d{4}|\(c\)\s*\d{4})"
    r"|\ball rights reserved\b|\bwszelkie prawa zastrzeżone\b|\balle rechte vorbehalten\b"
    r"|\btous droits réservés\b|\btodos los derechos reservados\b"
    r"|\balla rättigheter förbehållna\b"
    r"|\breprinted (?:here )?(?:with|by) (?:the )?(?:kind )?permission\b"
    r"|\b(?:may|must) not be (?:reproduced|republished|redistributed)\b.{0,80}"
    r"\b(?:without|permission|in (?:any|whole))\b)",
    _I,
)
DISCLAIMER = re.compile(
    r"\b(?:do(?:es)? not necessarily (?:reflect|represent)|are (?:those|solely those) of the "
    r"authors?\b.{0,40}\bnot\b|views expressed (?:here(?:in)?|in this)\b)",
    _I,
)
COOKIE = re.compile(
    r"\b(?:we use cookies|(?:this|our) (?:web)?site uses cookies|use of cookies|accept (?:all )?"
    r"cookies|cookie (?:settings|preferences|policy|notice))\b",
    _I,
)
TAGS = re.compile(r"^(?:tags?|topics?|keywords?|filed under|categories|category)\s*[:|]\s*\S", _I)
RELATED_HEADING = re.compile(
    r"^(?:related(?: articles| stories| content| coverage| news| posts| reading)?|most (?:read|"
    r"popular|viewed|shared)|(?:you )?(?:may|might) also (?:like|be interested in)|recommended"
    r"(?: for you| reading)?|more (?:from|stories|news|on)\b.{0,40}|top stories|trending(?: now)?"
    r"|what to read next|popular (?:now|stories))\s*:?$",
    _I,
)
SOCIAL_TOKENS = frozenset(
    """share tweet facebook twitter x linkedin email e-mail mail whatsapp telegram reddit
    pinterest print copy link url messenger vk flipboard save bookmark comment comments cite
    download pdf this article page on via sms""".split()
)
TOOLBAR_START = re.compile(
    r"^(?:share(?: this)?(?: article| story| page| post)?(?: on \w+)?|cite(?: this)?(?: article|"
    r" page)?|download(?: as)? pdf|print(?: this)?(?: article| page)?|e-?mail this(?: article)?"
    r"|copy link|listen to (?:this )?(?:article|story)(?: \d+ min(?:utes?)?)?"
    r"|\d{1,2}\s*min(?:ute)?s? read|reading time:? \d{1,2} min(?:ute)?s?)[\s:.]*$",
    _I,
)
NAV_SEPARATORS = re.compile(r"\s(?:\||›|»|>|•|·|::)\s|\s*[›»▸▶]\s*")
SKIP_LINK = re.compile(
    r"^(?:skip|jump) to (?:the )?(?:main )?(?:content|navigation|menu|search|footer)$"
    r"|^(?:menu|search|sign in|log ?in|subscribe|home|close|back to top|toggle navigation)$",
    _I,
)
FOLLOW_US = re.compile(r"^(?:follow|like|find) us\b.{0,80}$", _I)
COMMENTS_BAR = re.compile(
    r"^(?:\d+\s+)?(?:comments?|replies|responses)\s*(?:\(\d+\)|:\s*\d+)?$"
    r"|^(?:show|view|load|read) (?:all )?(?:\d+ )?comments$",
    _I,
)
PAGE_HEADER_WITH_NUMBER = re.compile(
    r"^(?:\d{1,4}[ \t]{3,}\S.{0,100}|\S.{0,100}?[ \t]{3,}\d{1,4})$"
)
PUBLISHED_CHROME = re.compile(
    r"^(?P<label>published|updated|posted|last updated|last modified|modified|date|"
    r"publicerad|uppdaterad|veröffentlicht|publié)(?:\s*[:|–-]|\s+on\b)\s*(?P<value>.{0,80})$",
    _I,
)

# ------------------------------------------------------------------ embeds and captions
EMBED_MARKER = re.compile(
    r"^(?:embed(?:ded)?(?: (?:content|post|tweet|video))?|\[?embedded content\]?"
    r"|(?:twitter|instagram|tiktok|youtube|facebook) (?:post|video|embed)"
    r"|view this post on (?:instagram|facebook|tiktok))\s*:?$",
    _I,
)
SOCIAL_ATTRIBUTION = re.compile(
    r"^(?:[—–-]|a post shared by)\s*[^\n(]{1,80}\(@[\w.]{1,30}\)\s*(?:on\s+)?"
    r"(?P<date>[A-Za-z]{3,9}\.? \d{1,2},? \d{4}|\d{1,2} [A-Za-z]{3,9} \d{4}"
    r"|\d{4}-\d{2}-\d{2})?\s*$",
    _I,
)
SOCIAL_LINK = re.compile(
    r"(?:https?://)?(?:pic\.twitter\.com|t\.co|instagr\.am|youtu\.be)/\w+|"
    r"https?://(?:www\.)?(?:twitter|x|instagram|tiktok|facebook)\.com/\S+",
    _I,
)
HANDLE_OR_TAG = re.compile(r"(?<![\w@])[@#]\w{2,}")
CAPTION_CREDIT = re.compile(
    r"(?:\b(?:photo(?:graph)?s?|image|picture|illustration|foto|bild|credit)\s*"
    r"(?::|by)\s*[^.!?\n]{1,100}$"
    r"|\b(?:archive (?:image|photo|picture))\b"
    r"|\*\*[^*\n]{2,120}\*\*\s*$)",
    _I,
)
CREDIT_WORDS = re.compile(
    r"\b(?:photo|image|pool|via|getty|reuters|afp|ap|epa|shutterstock|alamy|sputnik|tass|"
    r"xinhua|courtesy|handout|credit)\b|/",
    _I,
)
CAPTION_UI = re.compile(
    r"^(?:(?:image|photo|video|media) (?:source|caption|credit)s?\s*[,:]"
    r"|(?:full ?screen|enlarge|expand|zoom|view (?:image|gallery|slideshow)|open gallery"
    r"|image \d+ of \d+|\d+ of \d+ (?:photos|images))\b)",
    _I,
)

# ------------------------------------------------------------------ inline noise
INLINE_TAG = re.compile(
    r"</?(?:u|b|i|em|strong|span|a|font|sup|sub|small|mark|ins|del|s|br|p|div)\b[^<>\n]{0,200}?/?>",
    _I,
)
MD_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)([^*\n]{1,300}?)(?<=\S)\1")
MD_HEADING = re.compile(r"^#{1,6}[ \t]+", _M)
MD_LINK = re.compile(r"(?<!!)\[([^\[\]\n]{1,300})\]\((?:[^()\s]{1,500})\)")
BACKSLASH_ESCAPE = re.compile(r"\\([$*_#\[\]()`>&%{}~|\\-])")
HTML_ENTITY = re.compile(r"&(?:#\d{1,6}|#x[0-9a-fA-F]{1,5}|[a-zA-Z]{2,8});")
DOUBLED_DASH = re.compile(r"^([–—-][ \t]+)(?=[–—-][ \t]+\S)")
HYPHEN_BREAK = re.compile(r"([^\W\d_]{2,})-[ \t]*\n[ \t]*([a-z][^\W\d_]*)")

# ------------------------------------------------------------------ metadata
MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
DATE = re.compile(
    rf"(?:{MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTHS},?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[./]\d{1,2}[./]\d{4})",
    _I,
)
DATE_LINE = re.compile(
    rf"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:day|sday|nesday|rsday|urday)?\.?,?\s+)?"
    rf"(?P<date>{DATE.pattern})"
    r"(?:,?\s*(?:at\s+)?\d{1,2}[:.]\d{2}\s*(?:[ap]\.?m\.?)?\s*(?:[A-Z]{2,4})?)?$",
    _I,
)
PERSON_NAME = re.compile(
    r"^(?:(?:Dr|Prof|Mr|Mrs|Ms)\.?\s+)?[A-ZÀ-Þ][\w'’.-]*(?:\s+(?:[A-ZÀ-Þ][\w'’.-]*|de|van|von|"
    r"der|den|da|di|du|la|le|bin|al|el))*$"
)
BYLINE = re.compile(
    rf"^(?:by|(?:written|posted|published|reported|words|story|reporting) by|von|av|par|por)"
    rf"\s+(?P<names>.+?)"
    rf"(?:\s*[,|•·–—-]?\s*(?:on\s+)?(?:(?:updated|published)\s*:?\s*)?(?P<date>{DATE.pattern}).*)?$",
    _I,
)
_CAP = r"[A-ZÀ-Þ][\w'’.-]+"
BYLINE_IN_PLACE = re.compile(
    rf"^(?P<names>{_CAP}(?:\s+{_CAP}){{1,3}}(?:\s+and\s+{_CAP}(?:\s+{_CAP}){{1,3}})?)"
    rf"\s+in\s+(?P<place>{_CAP}(?:\s+{_CAP}){{0,2}})$"
)
NAME_SPLIT = re.compile(r"\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*|\s+och\s+|\s+und\s+)\s*")
SOURCE_LINE = re.compile(
    r"^(?P<label>source|original(?:ly published at| url| article| link)?|url|link|"
    r"this article (?:was )?(?:originally )?(?:appeared|published) (?:on|at|in)|källa|quelle)"
    r"\s*:\s*(?P<value>.*)$",
    _I | re.DOTALL,
)
URL_START = re.compile(r"^(?:https?://|www\.)\S", _I)
URL_FRAGMENT = re.compile(r"^[\w./%?=&#~+:;,@!$'*()-]+$")

# ------------------------------------------------------------------ noise the first cleaners missed
# "Page 3 of 9" with a running title before or after it on the same line
PAGE_OF = r"(?:page|p\.|pg\.?|seite|sida|página)\s*\d{1,4}(?:\s*(?:of|/|von|av|de)\s*\d{1,4})?"
PAGE_OF_LINE = re.compile(
    rf"^(?:(?P<pre>\S.{{0,100}}?)\s*[|•·–—-]?\s*{PAGE_OF}|{PAGE_OF}\s*[|•·–—-]?\s*(?P<post>\S.{{0,100}}))$",
    _I,
)
# a number glued to a running title: "2 | Example Review", "Example Review | 3", "Example Review 3"
NUMBERED_TITLE = re.compile(
    r"^(?:\d{1,4}\s*[|•·–—-]?\s+(?P<a>\D.{2,120})|(?P<b>.{3,120}?\D)\s*[|•·–—-]?\s+\d{1,4})$"
)
SERIES_LINE = re.compile(
    r"^(?:[\w&.,'’()-]+\s+){0,6}?"
    r"(?:working|discussion|policy|occasional|research|briefing|technical|conference|staff|"
    r"white|analysis|background)\s+(?:papers?|notes?|briefs?|reports?)"
    r"(?:\s+series)?(?:\s*(?:no\.?|nr\.?|number|#|vol\.?|issue)\s*)?"
    r"(?:\s*[,:|/–—-]?\s*(?:no\.?\s*|nr\.?\s*|#\s*)?[\w./-]*\d[\w./-]*){0,3}"
    r"(?:\s*[,:|–—-]\s*(?:\w+\.?\s+)?\d{4})?\s*$"
    r"|^ISSN(?:\s*\([a-z]+\))?\s*:?\s*\d{4}-\d{3}[\dX]\s*$"
    r"|^(?:[\w&.-]+\s+){0,4}(?:working|discussion|policy|occasional) papers? series\b.{0,40}$",
    _I,
)
RELATED_INLINE = re.compile(
    r"^(?:RELATED|Related|SEE ALSO|See also|MORE|ALSO READ|Also read|READ ALSO|WATCH|LISTEN)"
    r"(?:\s+(?:STORY|STORIES|COVERAGE|ARTICLE|story|stories|coverage|article|content))?"
    r"\s*:\s*\S.{0,200}$"
)
TOC_HEADING = re.compile(
    r"^(?:table of contents|contents|content|inhalt|inhaltsverzeichnis|innehåll"
    r"|innehållsförteckning"
    r"|sommaire|table des matières|índice|spis treści|obsah|indice|in this (?:issue|report))\s*:?$",
    _I,
)
# a contents entry: "1. Introduction ........ 3", "Chapter 2  The summit   7", "Introduction 3"
TOC_ENTRY = re.compile(
    r"^(?:(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,5}\.|chapter \d{1,2}:?|part \w+:?|annex \w+:?|"
    r"appendix \w+:?)\s+)?\S.{0,120}?(?:\s*\.{2,}\s*|\s*…+\s*|[ \t]{2,}|\s+)\d{1,4}$",
    _I,
)
PHP_ERROR = re.compile(
    r"^(?:PHP\s+)?(?:Warning|Notice|Deprecated|Fatal error|Parse error|Strict Standards|"
    r"Catchable fatal error|Recoverable fatal error)\s*:\s*.{0,600}?\bin\s+\S+\.php\b"
    r"(?:\s*:\s*\d+|\s+on\s+line\s+\d+).{0,200}$",
    _I | re.DOTALL,
)
SIGNATURE_SEPARATOR = re.compile(r"^--[ \t]?$", _M)
SENT_FROM = re.compile(
    r"^(?:sent from my \w[\w ]{0,30}|sent from (?:outlook|mail|yahoo mail|gmail)\b.{0,40}"
    r"|get outlook for \w+)$",
    _I,
)
CLOSING = re.compile(
    r"^(?:best(?: regards| wishes)?|kind regards|warm regards|regards|many thanks|thanks|"
    r"thank you|cheers|sincerely(?: yours)?|yours(?: sincerely| truly| faithfully)?|all the best"
    r"|mit freundlichen grüßen|med vänliga hälsningar|cordialement)[,.!]?$",
    _I,
)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# a phone number: labelled, international (+44 ...) or a national number with an area code;
# dates (2022-09-15, 15.09.2022) do not match
PHONE = re.compile(
    r"\b(?:tel|phone|mobile|mob|cell|fax)\.?\s*:?\s*\+?[\d(][\d ()./-]{5,}\d"
    r"|\+\d{1,3}[ .-]?\(?\d[\d ().-]{5,}\d"
    r"|\b0\d{2,4}[ /-]?\d{3}[ -]?\d{3,4}\b",
    _I,
)
CONTACT_START = re.compile(
    r"^(?:contact(?: us| info| information| the author)?|get in touch|reach us|e-?mail us|"
    r"call us|press contact|media contact|kontakt)\b\s*[:|–-]?",
    _I,
)
# inside a sentence: "did not Page 12 of 30 conclude", "did not – 12 – conclude"
INLINE_PAGE_NUMBER = re.compile(
    r"(?<=[a-z,;])[ \t]+(?:(?:Page|PAGE|Seite|Sida|Página)\s+\d{1,4}"
    r"\s*(?:of|/|von|av|de)\s*\d{1,4}"
    r"|[-–—]\s*\d{1,4}\s*[-–—])(?=[ \t]+[a-z])"
)
INLINE_PAGE_GATE = re.compile(r"(?:Page|PAGE|Seite|Sida|Página)\s+\d|[-–—]\s*\d{1,4}\s*[-–—]")
LONE_NUMBER_LINE = re.compile(
    r"^[ \t]*(?:\d{1,4}|[-–—]\s*\d{1,4}\s*[-–—]|" + PAGE_OF + r")[ \t]*$", _I
)
ROLE_WORDS = re.compile(
    r"\b(?:correspondent|editor|writer|reporter|fellow|analyst|professor|director|researcher|"
    r"contributor|columnist|staff|senior|chief|lecturer|head|associate|assistant|manager|"
    r"scientist|expert|officer|chair|president|founder|journalist|producer|author|student|"
    r"candidate|coordinator|advisor|adviser|specialist|economist|historian|photographer)\b",
    _I,
)
BYLINE_LABEL = re.compile(
    r"^(?:words(?: and (?:photos|pictures|images))?|text|author|authors|autor|autoren|författare"
    r"|auteur|written by|words by|text by|reporting by|story by)\s*[:]\s*(?P<names>.+)$",
    _I,
)
BYLINE_WORDS_BY = re.compile(
    r"^(?:(?:words|text|photos|pictures|images|story|reporting)"
    r"(?:\s*(?:and|&)\s*(?:words|text|photos|pictures|images))?\s+by)\s+(?P<names>.+?)\.?$",
    _I,
)
BYLINE_NAME_DATE = re.compile(
    rf"^(?P<names>[^|•·\n]{{3,80}}?)\s*[|•·]\s*(?:(?:updated|published|posted)\s*:?\s*)?"
    rf"(?P<date>{DATE.pattern}).*$",
    _I,
)
WEEKDAY_OR_TIME = re.compile(
    r"\b(?:mon|tue|wed|thu|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\b\.?"
    r"|\b\d{1,2}[:.]\d{2}\s*(?:[ap]\.?m\.?)?\b|\b\d{1,2}\s*[ap]\.?m\b",
    _I,
)
PRICE = re.compile(r"[$€£¥]\s*\d|\d\s*(?:€|eur|usd|sek|kr|zł)\b", _I)
# a word a sentence does not end on: a paragraph ending here goes on after the break
CONTINUING_WORDS = frozenset(
    """a an the of in on at to for from by with and or but nor as than that which who whom whose
    where when while if because although though since into onto upon about between among
    against during without within under over after before through across toward towards
    his her its their our your my is are was were be been being has have had will would
    can could should may might must shall not no such this these those both either neither
    said says told according including near like beside behind beyond via per until till despite
    throughout along around amid amongst towards whether""".split()
)
