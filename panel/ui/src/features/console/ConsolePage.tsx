import { useEffect } from "react";
import { usePageTitle } from "../../app/usePageTitle";
import { EmptyState, Loading } from "../../components/Feedback";
import { goToLogin } from "../account";
import { useCan, useServerScope } from "../servers";
import { CommandInput } from "./CommandInput";
import { ConnectionStatus, SkippedNotice } from "./ConnectionStatus";
import { ConsoleTerminal } from "./ConsoleTerminal";
import { useConsole } from "./useConsole";

export function ConsolePage() {
  const { server, nodes } = useServerScope();
  usePageTitle(`Console · ${server.name}`);
  const canRead = useCan("console.read");
  const canWrite = useCan("console.write");
  const { connection, snapshot } = useConsole(server.id, canRead);
  const mustLogIn = snapshot.connection.phase === "closed" && snapshot.connection.login;
  useEffect(() => {
    if (mustLogIn) goToLogin();
  }, [mustLogIn]);

  if (nodes === null) return <Loading label="Checking your permissions…" />;
  if (!canRead) {
    return (
      <EmptyState title="You cannot see this console">
        Watching the console needs the console.read permission on this server.
      </EmptyState>
    );
  }
  return (
    <section aria-label="Console">
      <ConnectionStatus connection={connection} phase={snapshot.connection} />
      <SkippedNotice skipped={snapshot.skipped} />
      <ConsoleTerminal connection={connection} />
      {canWrite ? (
        <CommandInput connection={connection} snapshot={snapshot} />
      ) : (
        <p role="note">You can watch this console; sending commands needs console.write.</p>
      )}
    </section>
  );
}
