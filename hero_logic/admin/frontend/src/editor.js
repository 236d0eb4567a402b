// The admin's code editor: CodeMirror 6 with Python highlighting, and its merge view for
// version diffs. Bundled by esbuild into ../static/vendor/editor.js (an IIFE that sets
// window.HeroEditor); the pages in ../static/ use only what this file exports.
import { EditorView, basicSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { python } from "@codemirror/lang-python";
import { MergeView } from "@codemirror/merge";

const theme = EditorView.theme({
  "&": { fontSize: "13px", height: "100%" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.55" },
  ".cm-collapsedLines": { fontFamily: "var(--sans)", fontSize: "12px" },
  // The merge view marks folded unchanged lines with U+299A, which no Debian font has (it
  // showed as a box): a double arrow every font has (WGL4) says "click to unfold" instead.
  ".cm-collapsedLines:before, .cm-collapsedLines:after": { content: '"\u2195"' },
  ".cm-gutters": { background: "var(--panel-2)", borderRight: "1px solid var(--line)", color: "var(--muted)" },
  "&.cm-focused": { outline: "none" },
});

function editor(parent, { doc = "", readOnly = false, onChange = null } = {}) {
  const extensions = [basicSetup, python(), theme, EditorState.readOnly.of(readOnly)];
  if (onChange) {
    extensions.push(EditorView.updateListener.of((update) => {
      if (update.docChanged) onChange(update.state.doc.toString());
    }));
  }
  const view = new EditorView({ doc, extensions, parent });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, selection: { anchor: 0 } });
      view.scrollDOM.scrollTop = 0;
      view.scrollDOM.scrollLeft = 0;
    },
    destroy: () => view.destroy(),
  };
}

function diff(parent, before, after) {
  const common = [basicSetup, python(), theme, EditorState.readOnly.of(true), EditorView.editable.of(false)];
  const view = new MergeView({
    a: { doc: before, extensions: common },
    b: { doc: after, extensions: common },
    parent,
    collapseUnchanged: { margin: 3, minSize: 6 },
    gutter: true,
  });
  return { view, destroy: () => view.destroy() };
}

window.HeroEditor = { editor, diff, version: "codemirror 6.0.2" };
