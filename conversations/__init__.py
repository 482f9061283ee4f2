"""The conversation core: what the bank says back to a text, and what should happen.

Pure code, no I/O: ``step(state, facts, text)`` returns the new dialog state, the replies
(catalogue keys with named values) and the effects for the web layer to carry out.
"""

from conversations.machine import Effect, Facts, MemberFacts, Outcome, Reply, State, step

__all__ = ["Effect", "Facts", "MemberFacts", "Outcome", "Reply", "State", "step"]
