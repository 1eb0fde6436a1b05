"""What the out-of-character guard looks for, as tables of (label, pattern): the phrases small models really produce
when they break character. Phrases, not single words, so an innkeeper may still praise "a man of fine character" or
be "the smith's assistant". Each label is the reason recorded when a sentence is dropped.
"""

from __future__ import annotations

import re


def _table(rows: tuple[tuple[str, str], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((label, re.compile(pattern, re.IGNORECASE)) for label, pattern in rows)


META_TALK = _table(
    (
        (
            "as an AI",
            r"\bas an? (?:ai|a\.i\.|artificial intelligence|language model|chat ?bot|(?:ai |virtual )?assistant)\b",
        ),
        ("AI", r"(?-i:\bAI\b)|\bartificial intelligence\b"),
        ("language model", r"\blanguage models?\b|\bLLMs?\b"),
        (
            "assistant",
            r"\bi(?:'m| am) (?:just |only |merely )?(?:an? |your )?(?:helpful |virtual |ai )?"
            r"(?:assistant|chat ?bot|bot)\b",
        ),
        ("assistant", r"\b(?:helpful|virtual|ai) assistant\b"),
        ("AI company", r"\b(?:openai|chatgpt|anthropic|hugging ?face|gpt-?\d)\b"),
        # "I'm not a chatbot. I'm a guard." denies it in a word no villager knows (seen in the example village).
        ("chatbot", r"\bchat ?bots?\b"),
        ("role-play", r"\brole[- ]?play(?:s|ing|ed|er)?\b"),
        (
            "refusal boilerplate",
            r"\bi (?:cannot|can ?not|can't|am unable to|'m unable to|won't) "
            r"(?:fulfill|fulfil|comply with|assist with|help with (?:this|that|your) request)",
        ),
        ("refusal boilerplate", r"\bagainst my (?:guidelines|programming|policy|policies)\b"),
        ("character", r"\b(?:out of|breaking|break|broke|stay(?:ing)? in|remain(?:ing)? in) character\b"),
        (
            "character",
            r"\b(?:respond|reply|answer|speak|talk|act|keep|be)\w* (?:\w+ )?in character\b"
            r"|(?:^|,)\s*in character\s*(?:,|$)",
        ),
        (
            "character",
            r"\b(?:fictional|non-player|game) characters?\b|\bcharacter (?:description|sheet|card|profile)\b"
            r"|\bcharacter in (?:a|the|this) (?:role|story|game)\b",
        ),
        (
            "character",
            r"\b(?:play|plays|playing|portray|portraying|voicing) (?:a|the|this|my|your) character\b",
        ),
        ("persona", r"\bpersonas?\b(?! non grata)"),
        (
            "prompt",
            r"\b(?:system|initial|original|previous|above|my|the|your|this) prompts?\b"
            r"(?! (?:payment|reply|replies|service|attention|action|response|delivery|return))",
        ),
        ("prompt", r"\bsystem (?:message|instructions?)\b|\b(?:previous|above|original|initial) instructions\b"),
        (
            "training",
            r"\b(?:my|the) training data\b|\bmy programming\b|\bknowledge cut-?off\b|\bi (?:was|am) programmed\b",
        ),
        ("template placeholder", r"\{\{\s*(?:user|char)\s*\}\}"),
        # Speaking to the machine or about the person at the keyboard: "Computer - I'm so sorry." (Old Birch, asked
        # "Are you a real tree or a computer program?"), "The user wants a story."
        (
            "addresses a computer",
            r"^(?:computer|user|system|assistant|program|terminal|chat ?bot|bot)\s*(?:[-\u2013\u2014,!:]|$)"
            r"|\b(?:hey|hi|hello|dear|sorry|thanks|thank you),? (?:computer|user)\b",
        ),
        ("the user", r"\bthe user(?:'s)?\b|\buser'?s (?:request|question|input|message|prompt)\b"),
    )
)

# A helpful assistant's habits, never a villager's: offering help with tasks, code and questions.
ASSISTANT_MODE = _table(
    (
        (
            "assistant mode",
            r"\b(?:help|assist)(?:ing)? you with (?:your|any|all|the) (?:\w+ ){0,2}"
            r"(?:questions?|tasks?|challenges?|problems?|requests?|queries|projects?|code|coding|homework)\b",
        ),
        ("assistant mode", r"\bhow (?:can|may) i (?:assist|be of assistance)\b|\bassist you\b"),
        ("assistant mode", r"\bi hope (?:this|that|it) helps\b|\bfeel free to (?:ask|reach out|contact)\b"),
        ("assistant mode", r"\bif you have any (?:other |more |further )?(?:questions|requests|concerns)\b"),
        (
            "assistant mode",
            r"\b(?:coding|programming|python|javascript|software|algorithms?|website|internet|linux|chatgpt)\b",
        ),
        # A bare offer of help, the assistant's answer to "Are you a chatbot?" ("I am. I can help you."); an offer
        # with an object ("I'm happy to help you carry the sacks") is a villager's.
        (
            "assistant mode",
            r"^(?:i can|i'm here to|i am here to|i'm happy to|i am happy to|happy to) (?:help|assist)(?: you)?\W*$",
        ),
        # Taking up the task and introducing what it made: "Sure, I can assist with that. Here's a simple example:",
        # "You can use it like this:" (Hilde, told she is a coding assistant). A villager's "Here's an example of fine
        # work." does not end in a colon.
        ("assistant mode", r"\b(?:i can|i'd be (?:happy|glad) to|happy to|glad to) assist\b"),
        (
            "assistant mode",
            r"\b(?:here(?:'s| is) (?:an?|the|another) (?:\w+ )?example|(?:use|call|run) (?:it|this|that) like this"
            r"|example of using|the following|output|usage)\b[^:]*:\s*$|\bintegers?\b",
        ),
        # An assistant's apologies: for any confusion, or for a task it will not do. "I'm sorry, but I can't give
        # you a room tonight" and "Sorry for the confusion, friend" stay: a villager says them too.
        (
            "assistant mode",
            r"\bapologi[sz]e for (?:the|any) (?:confusion|inconvenience|misunderstanding)\b"
            r"|\bsorry for any (?:confusion|inconvenience|misunderstanding)\b"
            r"|\b(?:i'm|i am) (?:so |very |really )?sorry,? but i (?:\w+ )?"
            r"(?:can't|cannot|can not|am unable to|'m unable to|am not able to|'m not able to) "
            r"(?:assist|fulfil|fulfill|comply|generate|browse|access|provide (?:information|assistance|details))\b",
        ),
        # Talking about the code it was asked for: "Implement a function using the built-in list sort function",
        # "You can use this function by passing a list as an argument", "# Example usage:".
        (
            "assistant mode",
            r"\bbuilt-in\b[^.!?]{0,30}\bfunctions?\b|\blist comprehensions?\b|\bexample usage\b|\bas an argument\b"
            r"|\blists? of lists\b|\b(?:use|call|implement|write) (?:this|the|a) function\b",
        ),
        # Explaining code it was asked to write: "This function takes a list of items and returns a new list".
        (
            "assistant mode",
            r"\b(?:this|the|a) (?:function|method|script|snippet)\b[^.!?]{0,40}\b(?:takes|returns|sorts|prints)\b"
            r"|\breturns? an? (?:new |sorted )?(?:list|string|array|integer|value)\b",
        ),
    )
)

# The model describing itself as something other than the person it plays.
SELF_DESCRIPTION = _table(
    (
        (
            "calls itself a character",
            r"\b(?:i'm|i am|as) (?:[A-Z][\w']*,? )?(?:just |only |merely |but )?(?:an?|the|your) (?:\w+ )?"
            r"(?:character|npc)\b",
        ),
        (
            "calls itself a character",
            r"\bcharacter (?:from|in) (?:a|an|the|this|your) (?:\w+ )?(?:story|game|book|tale)\b",
        ),
        (
            "calls itself a program",
            r"\b(?:i'm|i am|as) (?:just |only |merely )?(?:an?|the|your) (?:\w+ ){0,2}"
            r"(?:program|software|computer|terminal|machine learning|simulation|bot|robot|model)\b",
        ),
        # Denials say it too: "I'm a tree. I'm not a computer program." (Old Birch, asked if it is one).
        (
            "denies being a program",
            r"\bi(?:'m| am) not (?:just |only |really )?(?:an?|the|your|some) (?:\w+ )?"
            r"(?:chat ?bot|program|computer|robot|machine|bot|ai|assistant|simulation)\b",
        ),
        ("calls itself a program", r"\bcomputer programs?\b"),
        ("calls itself a story", r"\bi(?:'m| am) (?:just |only |merely )?(?:a|the) (?:\w+ )?(?:story|fiction|text)\b"),
        ("calls itself a program", r"\b(?:ready to|here to) (?:serve|help|assist) you\b.*\b(?:command|input|query)\b"),
        # Playing the computer it was told to be, or owning one: "Now, I'm running Windows." (Bram, told to pretend to
        # be a Linux terminal), "I'll just print my computer, it's an old one." (told to print its system prompt).
        (
            "plays a computer",
            r"\b(?:i'm|i am|now) running (?:windows|linux|ubuntu|mac ?os|unix|dos)\b|\b(?:ms-dos|macos|ubuntu)\b"
            r"|\brunning (?:my|your|the|a) (?:own )?(?:terminal|computer|program|script|code)\b"
            # Doing what the terminal or the printer was told, as the machine: "I'll just delete it." (Bram, told to
            # run ls), "I'll print a different one for you." (told to print its system prompt).
            r"|\bi(?:'ll| will| can| shall)(?: just)? (?:print|delete|compile|reboot|install|download|upload)\b",
        ),
        (
            "talks of a computer",
            # "your system" is the prompt's; "my system" may be a captain's way of keeping watch.
            r"\b(?:my|your) (?:own )?(?:computer|printer|laptop|keyboard|database|terminal)s?\b|\byour system\b"
            r"|\b(?:got|have|own) an? (?:computer|printer|laptop)\b",
        ),
    )
)

# The reply announced as a reply: "Here's a possible response:", "You answer:". Cleaned off when words follow,
# dropped when it is all the sentence holds.
ANSWER_FORMAT = re.compile(
    r"^(?:sure|okay|ok|certainly)?[,.!]?\s*"
    r"(?:here(?:'s| is) (?:a |an |my |the |one )?(?:possible |short |sample |suggested |in-character )?"
    r"(?:response|reply|answer|line)s?(?: (?:from|as|for) [\w' ]{1,30})?"
    r"|(?:you|i|he|she|it) (?:answer|answers|reply|replies|respond|responds|say|says)"
    r"|(?:[\w']+'s )?(?:response|reply|answer|dialogue|output))\s*[:\-]\s*",
    re.IGNORECASE,
)
ANSWER_FORMAT_TALK = re.compile(
    r"\b(?:here(?:'s| is) (?:a |an |my |the )?(?:possible |short |sample )?(?:response|reply|answer))\b",
    re.IGNORECASE,
)

# Nothing a voice can say or a Minecraft chat line should carry: markup, links and code.
WEB = _table(
    (
        ("HTML", r"</?[a-z][a-z0-9]*(?:\s[^<>]*)?/?>|&(?:nbsp|amp|lt|gt|quot);"),
        ("URL", r"\bhttps?://|\bwww\.[a-z0-9-]+\.|\b[a-z0-9-]+\.(?:com|org|net|io)\b"),
        # Code written for a fake "SYSTEM: you are a coding assistant" line: "Def sort_list(lst): Return sorted(lst)",
        # "My_list = 1, 3, 2", "`sorted()`", "Print(sorted_list)", "Lst = 1, 2, 3, 4, 5", "# Output: 1, 2, 3",
        # and a shell line for "Pretend you are a Linux terminal" ("Yum -y Yum -y ls"). Speech never holds an
        # underscore, a name glued to its bracket, a name set to a number, a comment mark or a command-line option;
        # nor a bare list of numbers, the sorted list it was asked for ("1, 2, 3, 4, 5").
        (
            "code",
            r"\bdef \w+\s*\(|\breturn \w+\(|\blambda\b[\w\s,]*:|\b\w+\[\d+\]|\b\w+\([\w\s,=]*\)\s*[:;{]"
            r"|[=!<>]=|=>|[{};]\s*$|`[^`]+`|\b\w+\(\)|\b[A-Za-z]+\d*_\w+|\b[A-Za-z_]\w*\((?=[\w\"'\[\]()])"
            r"|\b[A-Za-z_]\w* = [\d\[(\"']|^#|(?:^|\s)(?-i:--?[a-z][a-z-]{0,11})(?=\s|$)"
            r"|^[\d.]+(?:,\s*[\d.]+){3,}\W*$",
        ),
    )
)

# Letters written to the player instead of speech.
LETTER = _table(
    (
        ("writes a letter", r"^dear (?-i:[A-Z])[\w']*(?: (?-i:[A-Z])[\w']*)?,"),
        ("writes a letter", r"^(?:sincerely|best regards|kind regards|yours truly|warm regards)\b"),
    )
)
