import { useEffect, useState } from "react";
import { Button } from "./Button";

async function copyText(text: string): Promise<void> {
  // The Clipboard API needs a secure context (https or localhost); a panel reached over plain
  // http on another address falls back to a selected text area.
  if (window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  // Deprecated, and still the only way to copy outside a secure context.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("the browser refused to copy");
}

/** Copies `text`; says so (to screen readers too) for a moment. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [result, setResult] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (result === "idle") return;
    const timer = window.setTimeout(() => {
      setResult("idle");
    }, 2000);
    return () => {
      window.clearTimeout(timer);
    };
  }, [result]);
  return (
    <Button
      small
      variant="ghost"
      icon={result === "copied" ? "check" : "copy"}
      aria-label={`Copy ${label}`}
      onClick={() => {
        copyText(text).then(
          () => {
            setResult("copied");
          },
          () => {
            setResult("failed");
          },
        );
      }}
    >
      <span aria-live="polite">
        {result === "copied" ? "Copied" : result === "failed" ? "Copy failed" : "Copy"}
      </span>
    </Button>
  );
}
