# mc_task.sh - the hand-made multiple-choice task of the `upq eval --mc` e2e tests
# (tests/e2e/eval_mc.sh, eval_multi.sh); sourced, never run.

# mc_task FILE [blank]: five items, the right answer first in each (index 0), 2 to 4
# choices; with "blank", an empty line after the second item (the reader skips it).
mc_task() {
    cat >"$1" <<'T'
{"context": "The sun rises in the", "choices": ["east.", "refrigerator of the soul.", "west."], "answer": 0}
{"context": "Once upon a time there was a", "choices": ["little girl who lived in a village.", "purple", "of of of the"], "answer": 0}
T
    if [[ ${2:-} == blank ]]; then echo >>"$1"; fi
    cat >>"$1" <<'T'
{"context": "Shall I compare thee to a summer's", "choices": ["day?", "spreadsheet?"], "answer": 0}
{"context": "He opened the door and", "choices": ["walked into the room.", "the the the", "seventeen", "quickly sky"], "answer": 0}
{"context": "The king said to his", "choices": ["son, \"Go forth.\"", "banana", "mathematically"], "answer": 0}
T
}
