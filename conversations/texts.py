"""Every text the bank sends, in one catalogue, with named placeholders.

A translation is a new language block with the same keys; texts are never assembled from
fragments, so each can be translated whole. Keep English texts within one SMS segment (160
GSM-7 characters) with realistic names filled in; ``tests/test_texts.py`` checks every one.
Never ask a member to send STOP, START, HELP or YES alone for anything else: carriers and
Twilio act on those words themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter

from conversations.gsm import to_gsm
from ledger.hours import format_hours

DEFAULT_LANGUAGE = "en"

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        # People the bank does not know yet
        "welcome": (
            "Hi! This is {bank}, where neighbours swap help by the hour. To join, reply "
            "JOIN and your first name, e.g. JOIN Sam"
        ),
        "join_needs_name": "To join {bank}, reply JOIN and your first name, e.g. JOIN Sam",
        "welcome_back": (
            "Hi {name}, you left {bank} earlier. To come back, reply JOIN {name}"
        ),
        "joined": (
            "Welcome to {bank}, {name}! What could you help neighbours with? "
            "e.g. shopping, gardening, a chat. Reply with a few words, or SKIP"
        ),
        "joined_pending": (
            "Thanks {name}! Someone from {bank} will be in touch to welcome you. Meanwhile, "
            "what could you help with? e.g. shopping. Reply, or SKIP"
        ),
        "rejoined": "Welcome back to {bank}, {name}! Your hours are as you left them. "
                    "Reply BALANCE to see them",
        "already_member": (
            "You're already a member of {bank}, {name}. Reply BALANCE for your hours "
            "or PROFILE for your details"
        ),
        # Profile questions after joining, each skippable
        "ask_area": "Which area do you live in? e.g. Brixton. Reply, or SKIP",
        "ask_availability": (
            "When are you usually free? e.g. weekday mornings. Reply, or SKIP"
        ),
        "profile_done": (
            "All set, {name}. Reply BALANCE for your hours, PROFILE for your details "
            "or MENU for what you can do"
        ),
        "profile": (
            "{name}. Area: {area}. Can help with: {skills}. Free: {availability}. To change "
            "one, reply NAME, AREA, SKILLS or FREE and the new words"
        ),
        "profile_pending": (
            "{name} (waiting for a welcome from {bank}). Area: {area}. Can help with: "
            "{skills}. Free: {availability}. To change, reply AREA, SKILLS or FREE + words"
        ),
        "profile_updated": "Saved, {name}. Reply PROFILE to see your details",
        "profile_field_empty": "Please add the new words, e.g. AREA Brixton or SKILLS gardening",
        "not_given": "not given",
        "help_given": "help",
        # Balance
        "balance": "Balance: {hours} hours. Every hour you give earns an hour of help",
        "balance_one": "Balance: {hours} hour. Every hour you give earns an hour of help",
        # Leaving and opting out
        "left": (
            "You have left {bank}, {name}. Your hours are kept. If you want to come back, "
            "reply JOIN {name}"
        ),
        "stopped": (
            "You won't get any more texts from {bank}. To get texts again, reply START"
        ),
        "started": "Welcome back! {bank} will text you again. Reply MENU for what you can do",
        "already_started": "You're getting texts from {bank}. Reply MENU for what you can do",
        # Help and not understood
        "help_member": (
            "{bank}: 1 hour given = 1 hour back. Reply NEED or OFFER and a few words, DONE 2 "
            "Ana for help you gave, GIVE, BALANCE, STATEMENT, MINE or LEAVE"
        ),
        "help_broker": (
            "{bank} brokers: BROADCAST and details, WHO 7, CREDIT 7 2, RECORD 07700900123 2 "
            "gardening, APPROVE or HOLD and a number. Also BALANCE"
        ),
        "help_pending": (
            "Hi {name}, someone from {bank} will welcome you soon; then you can record hours. "
            "Meanwhile reply PROFILE for your details or BALANCE"
        ),
        "help_stranger": (
            "{bank}: neighbours help each other, 1 hour given = 1 hour back. To join, reply "
            "JOIN and your first name, e.g. JOIN Sam"
        ),
        "unknown_member": (
            "Sorry {name}, I didn't understand, so a broker will read it. Reply MENU to see "
            "what you can do, e.g. BALANCE, or TALK for a person"
        ),
        "unknown_skip": "There's no question to skip. Reply BALANCE for your hours or "
                        "PROFILE for your details",
        "empty": "Your message was empty. Reply MENU to see what you can do",
        "empty_stranger": "Your message was empty. To join {bank}, reply JOIN and your first "
                          "name, e.g. JOIN Sam",
        "picture": "Thanks! I can only read words, not pictures. Reply MENU to see what you "
                   "can do",
        "picture_stranger": "Thanks! I can only read words, not pictures. To join {bank}, "
                            "reply JOIN and your first name, e.g. JOIN Sam",
        "bad_name": "Please send your first name in letters, e.g. JOIN Sam",
        "bad_name_member": "Please send your name in letters, e.g. NAME Sam",
        "unsupported_sender": "Sorry, the time bank can only answer texts from a mobile "
                              "phone number.",
        "invalid_request": "Sorry, that message could not be read. Please text again.",
        # The database or Redis was away (a restart): nothing was done; the same words again
        # will be handled once.
        "try_again": "Sorry, the time bank couldn't take your message just now. Please send "
                     "it again in a minute.",
        # Brokers
        # At most one an hour (app.effects): later joiners are on the dashboard's Members page
        "broker_new_member": (
            "New members wait for a welcome at {bank} (all on the dashboard), first {name}. "
            "Approve with: timebank member approve {member_id}"
        ),
        # Caps on texts (app.caps)
        "broker_caps_member": (
            "{bank}: {name} (member {member_id}) reached today's limit of texts to others; "
            "some were held back. Their requests are on the dashboard"
        ),
        "broker_caps_bank": (
            "{bank} has sent its {limit} texts for today; others wait until tomorrow. To "
            "change it: timebank bank set --bank-daily-texts"
        ),
        "approved": "Good news, {name}: you're now an active member of {bank}. "
                    "Reply MENU for what you can do",
        # Hours, as other texts show them ({hours} is a number of hours with its unit)
        "hours_one": "{n} hour",
        "hours_other": "{n} hours",
        # Recording hours given: DONE, then YES or NO from the member helped
        "done_usage": "To record help you gave, reply DONE, the hours and who you helped, "
                      "e.g. DONE 2 Ana gardening",
        "hours_invalid": "Please write the hours as a number in quarter hours (1, 1.5, 0.25), "
                         "e.g. {example}",
        "hours_too_many": "That's more than {hours} at once. For longer, please ask your broker",
        "who_unknown": "Sorry, I can't find {who} in {bank}. Try their phone number instead, "
                       "e.g. {command} 2 07700900123",
        "who_ambiguous": "There's more than one {who} in {bank}. Please use their phone number, "
                         "e.g. {command} 2 07700900123",
        "who_self": "That's you! Reply {command}, the hours and another member's name or "
                    "number, e.g. {command} 2 Ana",
        "done_requested": "Thanks {name}! I've asked {other} to confirm {hours} ({what}). "
                          "I'll text you when they reply",
        "done_held": "Thanks {name}! I've noted {hours} ({what}), ref {ref}. You've sent a "
                     "lot today, so a broker will check it with {other}",
        "caps_member_over": (
            "{name}, you've reached today's limit of texts to other members. Your requests "
            "are kept safe and a broker will look at them"
        ),
        "done_already_asked": "I've already asked {other} to confirm {hours} (ref {ref}). "
                              "I'll text you when they reply",
        "confirm_ask": "{other} says they helped you for {hours} ({what}). Reply YES {ref} to "
                       "confirm or NO {ref} if that's not right",
        "confirm_ask_helper": "{other} says you helped them for {hours} ({what}). Reply YES "
                              "{ref} to confirm or NO {ref} if that's not right",
        "confirm_reminder": "Reminder: {other} says they helped you for {hours} ({what}). "
                            "Reply YES {ref} to confirm or NO {ref} if not",
        "receipt_payer": "Thank you! Recorded: {other} gave you {hours} ({what}). "
                         "Your balance: {balance}",
        "receipt_payee": "{other} confirmed the {hours} you gave ({what}). Thank you! "
                         "Your balance: {balance}",
        "already_confirmed": "Ref {ref} is already recorded. Your balance: {balance}",
        "disputed_member": "Thanks for telling us. Ref {ref} is not recorded, and someone from "
                           "{bank} will be in touch",
        "disputed_other": "{other} says ref {ref} ({hours}, {what}) isn't right, so it's not "
                          "recorded. Someone from {bank} will be in touch",
        "limit_reached": "Sorry, that would take your balance below {limit}, so ref {ref} is "
                         "not recorded yet. Someone from {bank} will be in touch",
        "ref_unknown": "Sorry, I can't find ref {ref} for you. Reply YES or NO with the number "
                       "from our text, e.g. YES 17",
        "ref_closed": "Ref {ref} is already closed. Someone from {bank} will be in touch if "
                      "anything is needed",
        "yes_which": "Please reply YES and the number from our text, e.g. YES 17",
        "no_which": "Please reply NO and the number from our text, e.g. NO 17",
        "nothing_to_answer": "There's nothing waiting for your answer. Reply BALANCE for your "
                             "hours or MENU for what you can do",
        "several_to_answer": "Requests {refs} are waiting for you. Please reply YES or NO "
                             "with the number, e.g. YES {ref}",
        # Giving hours
        "give_usage": "To give hours, reply GIVE, the hours and who to, e.g. GIVE 2 Ana, or "
                      "GIVE 1 FUND for the community fund",
        "give_preview": "Give {hours} to {other}? Reply YES {ref} to confirm or NO {ref} "
                        "to cancel",
        "give_preview_fund": "Give {hours} to the {bank} community fund? Reply YES {ref} to "
                             "confirm or NO {ref} to cancel",
        "give_done": "Done: {hours} given to {other}. Your balance: {balance}",
        "give_canceled": "Fine, ref {ref} is cancelled and nothing was given. "
                         "Your balance: {balance}",
        "gift_received": "{other} gave you {hours} of time credit. Your balance: {balance}",
        "community_fund": "the community fund",
        # Statement
        "statement_in": "{date} +{hours} from {other}: {what}",
        "statement_out": "{date} -{hours} to {other}: {what}",
        "statement_more": "{entries}\nReply MORE for earlier ones",
        "statement_last": "{entries}\nBalance: {balance}",
        "statement_empty": "No hours recorded yet. Balance: {balance}",
        "statement_end": "That's all. Balance: {balance}",
        "more_nothing": "Reply STATEMENT to see your latest hours",
        # Offers, needs and asking helpers
        "offer_usage": "Tell us what you could do for neighbours, e.g. OFFER lifts to the shops",
        "need_usage": "Tell us what you need, e.g. NEED a lift to the clinic on Tuesday",
        "offer_posted": "Thanks {name}! Your offer is posted (ref {ref}). When someone needs "
                        "it, I'll ask you. CLOSE {ref} withdraws it",
        "need_posted": "Thanks {name}! I'm asking neighbours who could help with: {what} "
                       "(ref {ref}). I'll text you when someone says yes",
        "ask_helper": "{name} needs: {what} ({area}). Reply YES {ref} to help or NO {ref} "
                      "to pass",
        "ask_helper_no_area": "{name} needs: {what}. Reply YES {ref} to help or NO {ref} "
                              "to pass",
        "match_helper": "Thank you! You're helping {name}: {what}. Their number is {phone}; "
                        "you both agreed. After, reply DONE {ref} and the hours",
        "match_requester": "Good news: {name} can help with: {what}. Their number is {phone}; "
                           "you both agreed. Ref {ref}",
        "match_too_late": "Thank you, someone else is already helping. I'll ask you again "
                          "another time",
        "match_released": "{name} can't help with: {what} after all. I'm asking other "
                          "neighbours and will text you",
        "done_already_reported": "Hours for ref {ref} were already reported ({hours}, ref "
                                 "{confirmation}), so nothing more is recorded",
        "match_declined": "Thanks for letting me know. I'll ask someone else",
        "match_closed": "Thank you! That request is closed now, so no help is needed",
        "nobody_found": "Sorry {name}, no one is free for: {what} yet. Someone from {bank} "
                        "will be in touch",
        "broker_nobody": "No helper found for ref {ref} ({what}) for {name}. A broker may "
                         "match them by hand",
        "mine_list": "Your posts: {entries}. Reply CLOSE and a number to withdraw one",
        "mine_entry_need": "{ref} need: {what}",
        "mine_entry_offer": "{ref} offer: {what}",
        "mine_none": "You have no open posts. Reply NEED or OFFER and a few words, "
                     "e.g. NEED a lift",
        "post_closed": "Ref {ref} is withdrawn. Thank you",
        "close_unknown": "You have no open post with ref {ref}. Reply MINE to see yours",
        "close_usage": "Reply CLOSE and the number of the post, e.g. CLOSE 42. MINE lists "
                       "yours",
        "renew_usage": "Reply RENEW and the number of your need, e.g. RENEW 42. MINE lists "
                       "yours",
        "renewed": "Ref {ref} stays open for another 14 days. I'll keep asking neighbours",
        "renew_unknown": "You have no need with ref {ref}. Reply MINE to see yours",
        "need_expiring": "Your need ({what}, ref {ref}) closes tomorrow. Reply RENEW {ref} to "
                         "keep it open",
        "done_reminder": "Did you help {name} ({what})? Reply DONE {ref} and the hours, "
                         "e.g. DONE {ref} 2",
        "done_on_ref_unknown": "Ref {ref} isn't a match of yours. Reply DONE, the hours and "
                               "who you helped, e.g. DONE 2 Ana",
        # Brokers recording hours for members who cannot text
        "brokers_only": "Sorry, only {bank}'s brokers can do that",
        "record_self": "Brokers can't record hours for themselves: another broker of {bank} "
                       "can",
        "record_usage": "To record hours, reply RECORD, the member's number, the hours and "
                        "what, e.g. RECORD 07700900123 2 gardening",
        "member_not_found": "No member of {bank} has that number. Reply RECORD, their number, "
                            "the hours and what, e.g. RECORD 07700900123 2 gardening",
        "record_done": "Recorded {hours} for {other} ({what}), from {source}. "
                       "Their balance: {balance}",
        "record_received": "{bank} recorded {hours} for you ({what}). Thank you! "
                           "Your balance: {balance}",
        "broker_settled": "{bank} has recorded ref {ref}: {hours} from {payer} to {payee} "
                          "({what}). Your balance: {balance}",
        "broker_closed": "{bank} has closed ref {ref} ({hours}, {what}) without recording it. "
                         "Your balance: {balance}",
        "reversal_notice": "{bank} corrected an entry: {hours} from {payer} to {payee} "
                           "({what}) was reversed. Your balance: {balance}",
        "broker_disputed": "Ref {ref} disputed: {payee} says they helped {payer} for {hours} "
                           "({what}). See timebank ledger queue",
        "broker_held": "Ref {ref} held: it would take {payer} below their limit ({hours} from "
                       "{payer} to {payee}). See timebank ledger queue",
        "broker_unanswered": "Ref {ref} unanswered: {payee} says they helped {payer} for "
                             "{hours} ({what}). See timebank ledger queue",
        # Group activities: a broker's broadcast, members' answers, crediting who came
        "broadcast": "{bank}: {text}\nReply YES {ref} to come",
        "broadcast_usage": "To invite members, reply BROADCAST and the details, e.g. BROADCAST "
                           "Lunch club Fri 12:30. Add @Brixton or #gardening for some",
        "broadcast_confirm": "Ref {ref} goes to {count} members: {total} texts in all, "
                             "{segments} each. Reply YES {ref} to send it or NO {ref} to cancel",
        "broadcast_sending": "Ref {ref} is on its way. Members invited: {count}. Reply WHO "
                             "{ref} to see who's coming",
        "broadcast_sent_already": "Ref {ref} has already gone out, so it can't be canceled. To "
                                  "tell people it's off, reply BROADCAST and the news",
        "broadcast_nobody": "No members match {audience}, so nothing was sent. Reply BROADCAST "
                            "with another @area or #skill",
        "broadcast_nobody_all": "No members of {bank} can be texted yet, so nothing was sent",
        "broadcast_canceled": "Ref {ref} canceled: nothing was sent",
        "broadcast_already": "Ref {ref} is already on its way. Members invited: {count}. "
                             "Reply WHO {ref} to see who's coming",
        "rsvp_yes": "Thanks {name}, you're on the list for ref {ref}. If you can't come after "
                    "all, reply NO {ref}",
        "rsvp_no": "Thanks {name}, you're off the list for ref {ref}. If you can come after "
                   "all, reply YES {ref}",
        "rsvp_canceled": "Sorry, ref {ref} has been called off. Reply MENU for what else you "
                         "can do",
        "who_usage": "Reply WHO and the ref of a broadcast, e.g. WHO 7",
        "activity_unknown": "Ref {ref} isn't a broadcast of {bank}. Reply WHO and its ref, "
                            "e.g. WHO 7",
        "who_coming": "Ref {ref}: coming {coming}, can't {not_coming}. {names}. Texts sent: "
                      "{sent} of {count}. To credit them, reply CREDIT {ref} 2",
        "who_credited": "Ref {ref}: coming {coming}, can't {not_coming}, credited {credited}. "
                        "{names}. Texts sent: {sent} of {count}",
        "who_nobody": "Ref {ref}: nobody has said yes yet (can't: {not_coming}). Texts sent: "
                      "{sent} of {count}. Reply WHO {ref} later",
        "who_uninvited": "Also said yes to ref {ref}, not invited: {names}. CREDIT {ref} 2 "
                         "pays only those invited; to pay these, add their numbers",
        "more_names": "{names} and {more} more",
        "credit_usage": "To credit people who came, reply CREDIT, the ref and hours, e.g. "
                        "CREDIT 7 2, or add their numbers: CREDIT 7 2 07700900123",
        "credit_bad_number": "{phone} isn't a number we can read, so nobody was credited. "
                             "Reply CREDIT 7 2 07700900123",
        "credit_not_member": "No member of {bank} has the number {phone}, so nobody was "
                             "credited. Check it and reply CREDIT again",
        "credit_nobody": "Nobody has said they're coming to ref {ref}, so nobody was credited. "
                         "Reply CREDIT {ref} 2 and their numbers",
        "credit_planned": "Ref {ref} hasn't been sent yet. Reply YES {ref} to send it first",
        "credit_done": "Ref {ref}: {hours} each from {source}. Credited now: {paid}. Credited "
                       "before: {already}. Reply WHO {ref} to check",
        "activity_credited": "{bank} credited you {hours} for coming to ref {ref}. Thank you! "
                             "Your balance: {balance}",
        # Brokers welcoming and holding members
        "approve_usage": "Reply APPROVE and the member's number, e.g. APPROVE 07700900123",
        "hold_usage": "Reply HOLD and the member's number, e.g. HOLD 07700900123",
        "member_number_unknown": "No member of {bank} has that number. Check it and reply "
                                 "APPROVE or HOLD and the number",
        "approved_broker": "{name} is now an active member of {bank}",
        "already_active": "{name} is already an active member of {bank}",
        "held_broker": "{name} is on hold: no hours, matches or broadcasts until a broker "
                       "replies APPROVE and their number",
        "already_held": "{name} is already on hold. To welcome them back, reply APPROVE and "
                        "their number",
        "hold_broker": "{name} is a broker, and brokers can't be put on hold",
        # The dashboard
        "login_code": "{code} is your {bank} dashboard code. It works for 10 minutes. If you "
                      "didn't ask for it, you can ignore this text",
        # Safer introductions (app.care.introductions): numbers only after a broker approves
        "intro_helper_waiting": "Thank you! You're helping {name}: {what} (ref {ref}). "
                                "Someone from {bank} will introduce you both soon",
        "intro_requester_waiting": "Good news: {name} can help with: {what} (ref {ref}). "
                                   "Someone from {bank} will introduce you both soon",
        "intro_broker": "{bank}: {other} can help {name} with {what} (ref {ref}). "
                        "Reply INTRO {ref} to introduce them (or see the dashboard)",
        "intro_declined_helper": "Thank you for offering to help {name} ({what}). Someone "
                                 "else will help this time; I'll ask you again another time",
        "intro_declined_requester": "About your request ({what}, ref {ref}): I'm asking other "
                                    "neighbours who could help and will text you",
        "intro_done": "Thank you. {other} and {name} now have each other's number (ref {ref})",
        "intro_already": "{other} and {name} were already introduced (ref {ref})",
        "intro_was_declined": "A broker already decided not to introduce ref {ref}",
        "intro_closed": "Ref {ref} needs no introduction now: it was withdrawn, or the helper "
                        "can't after all",
        "intro_unknown": "No introduction waits with ref {ref} at {bank}. The dashboard lists "
                         "those waiting",
        "intro_own": "You're one of the two members in ref {ref}: another broker of {bank} "
                     "must introduce them",
        "intro_usage": "To introduce two members, reply INTRO and the ref, e.g. INTRO 42",
        # Data protection: how others' statements name a member the bank has forgotten
        "former_member": "a former member",
        # --- Care: leaving, pausing and being missed (app.care.away) ---
        "leave_ask": "{name}, to leave {bank} reply LEAVE NOW within 30 minutes. Your hours "
                     "are kept and JOIN brings you back. Any other reply and you stay",
        "leave_stay": "Good, you're staying with {bank}, {name}. Reply MENU to see what you "
                      "can do",
        "away_set": "{name}, you're paused: no asks, news or reminders from {bank}. Reply "
                    "BACK when you want them again",
        "away_set_until": "{name}, you're paused until {date}: no asks, news or reminders. "
                          "We'll text the day before. Reply BACK to come back sooner",
        "away_need_open": "Your need ref {ref} stays open. To close it, reply CLOSE {ref}",
        "away_needs_open": "Your {count} open needs stay open. Reply MINE to see them, or "
                           "CLOSE and a ref to close one, e.g. CLOSE {ref}",
        "away_usage": "To pause asks and news, reply AWAY, AWAY 3 weeks or AWAY until 24 Dec "
                      "(a year at most). Reply BACK to resume",
        "back": "Welcome back, {name}! Asks and news from {bank} start again. Reply AWAY any "
                "time to pause",
        "back_not_away": "{name}, you're not paused. To pause asks and news, reply AWAY or "
                         "AWAY 2 weeks",
        "away_back_tomorrow": "Hello {name}, you're back with {bank} tomorrow: asks and news "
                              "start again. To stay away longer, reply AWAY 2 weeks",
        "away_set_by_broker": "Hello {name}, {bank} has paused asks and news to you for now. "
                              "Reply BACK whenever you want them again",
        "away_set_by_broker_until": "Hello {name}, {bank} has paused asks and news to you "
                                    "until {date}. Reply BACK whenever you want them again",
        "profile_away": "Paused: no asks, news or reminders. Reply BACK to resume",
        "profile_away_until": "Paused until {date}: no asks, news or reminders. Reply BACK to "
                              "resume",
        "check_in": "Hello {name}, it's been a while. Reply OK if all is well, or TALK to hear "
                    "from a broker",
        "check_in_thanks": "Thank you, {name}, good to hear from you! We're here whenever you "
                           "need us",
        "care_summary": "{bank}, people to check on: {names}. Details on the dashboard",
        "care_summary_more": "{bank}, people to check on: {names}, and {more} more: see the "
                             "dashboard",
        "care_entry_left": "{name} #{member_id} left",
        "care_entry_stop": "{name} #{member_id} stopped texts",
        "care_entry_away": "{name} #{member_id} away",
        "care_entry_away_until": "{name} #{member_id} away till {date}",
        "care_entry_quiet": "{name} #{member_id} quiet {count} weeks",
        # --- Care: members who cannot text, and phones shared by two (app/care/offline.py) ---
        "added_welcome": "Welcome to {bank}, {name}! A broker has made you a member. Reply "
                         "MENU to see what you can do",
        "phone_given": "Hello {name}, {bank} will text you on this number now, and your hours "
                       "are all kept. Reply MENU to see what you can do",
        "who_is_texting": "Hello from {bank}. This phone is shared: who is texting? Reply 1 "
                          "for {name}, 2 for {other}. Later, SWITCH lets the other text",
        "who_is_texting_again": "Sorry, I need to know who is texting first. Reply 1 for "
                                "{name}, 2 for {other}",
        "for_member": "For {name}: {text}",
        "match_helper_offline": "Thank you! You're helping {name}: {what}. {bank} will call "
                                "you to arrange it. After, reply DONE {ref} and the hours",
        "match_requester_by_broker": "Good news: {name} can help with: {what}. {bank} will be "
                                     "in touch to arrange it. Ref {ref}",
        "broker_match_offline": "{other} ({phone}) will help {name} (#{member_id}, no phone) "
                                "with: {what}. Over to you to arrange it. Ref {ref}",
        "broker_confirm_for": "{other} says {hours} with {name} (#{member_id}, no phone): "
                              "{what}. Check with {name}, then confirm ref {ref} on the "
                              "dashboard",
        "record_shared": "That number is shared by two members. Use a member number instead, "
                         "e.g. RECORD #12 2 gardening",
        # --- Care: members' words reach a person (app/care/inbox.py) ---------------------
        "care_talk": "Thanks {name}, a broker from {bank} will be in touch, usually "
                     "{contact_hours}. Reply MENU for what else you can do",
        "care_talk_soon": "Thanks {name}, a broker from {bank} will be in touch soon. "
                          "Reply MENU for what else you can do",
        "care_talk_stranger": "To hear from someone at {bank}, reply JOIN and your first name, "
                              "e.g. JOIN Sam, then TALK",
        "care_distress": "I'm so sorry you're feeling like this, {name}. Someone from {bank} "
                         "will call you as soon as they can. You can ring us on {support}. "
                         "Right now: {crisis}",
        "care_distress_no_line": "I'm so sorry you're feeling like this, {name}. Someone from "
                                 "{bank} will call you as soon as they can. Right now: {crisis}",
        "care_distress_stranger": "I'm so sorry you're feeling like this. You can ring {bank} "
                                  "on {support}. Right now: {crisis}",
        "care_distress_stranger_no_line": "I'm so sorry you're feeling like this. You don't "
                                          "have to face it alone. Right now: {crisis}",
        "care_thanks": "You're welcome, {name}! Reply MENU any time to see what you can do",
        "care_passed_on": "Sorry to bother you, {name}. A broker at {bank} will read your "
                          "message. If you'd like to leave the bank, reply LEAVE",
        "care_help": "{bank} is here for you, {name}. Reply TALK and a broker will be in "
                     "touch, NEED and a few words to ask neighbours, or MENU for more",
        "care_talk_alert": "{name} (#{member_id}) would like a broker to be in touch: "
                           "\"{what}\" Their number: {phone}. See Inbox on the dashboard",
        "care_distress_alert": "Urgent: {name} (#{member_id}) may be in distress: \"{what}\" "
                               "Call them on {phone} as soon as you can. See Inbox",
        "care_stranger_alert": "Urgent: someone not in {bank} ({masked}) may be in distress: "
                               "\"{what}\" They got the crisis line. See Inbox",
        "care_broker_reply": "{bank}: {text} ({broker})",
    },
}


@dataclass(frozen=True)
class Hours:
    """A number of hours with its unit, rendered in the text's language ("1 hour", "2 hours")."""

    minutes: int


class MissingText(KeyError):
    """A catalogue key or placeholder that does not exist."""


def render(key: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key`` in ``language`` (English when not translated), values filled in."""
    texts = CATALOGUE.get(language) or CATALOGUE[DEFAULT_LANGUAGE]
    template = texts.get(key) or CATALOGUE[DEFAULT_LANGUAGE].get(key)
    if template is None:
        raise MissingText(key)
    values = {
        name: _hours(value, language) if isinstance(value, Hours) else value
        for name, value in params.items()
    }
    try:
        return to_gsm(template.format_map(_Strict(values)))
    except KeyError as exc:
        raise MissingText(f"{key}: missing value {exc}") from None


def _hours(value: Hours, language: str) -> str:
    key = "hours_one" if abs(value.minutes) == 60 else "hours_other"
    return render(key, language, n=format_hours(value.minutes))


def placeholders(key: str, language: str = DEFAULT_LANGUAGE) -> set[str]:
    template = CATALOGUE[language][key]
    return {field for _, field, _, _ in Formatter().parse(template) if field}


class _Strict(dict[str, object]):
    def __init__(self, params: Mapping[str, object]) -> None:
        super().__init__(params)

    def __missing__(self, key: str) -> object:
        raise KeyError(key)
