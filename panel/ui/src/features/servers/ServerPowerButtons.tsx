import { useEffect, useState } from "react";
import type { PowerAction } from "../../api/client";
import { describeError } from "../../api/errors";
import { Button } from "../../components/Button";
import type { IconName } from "../../components/Icon";
import { usePower } from "./api";
import styles from "./ServerPowerButtons.module.css";
import { useCan, useServerScope } from "./ServerScope";
import { powerOffered } from "./state";

const ACTIONS: { action: PowerAction; label: string; icon: IconName }[] = [
  { action: "start", label: "Start", icon: "play" },
  { action: "restart", label: "Restart", icon: "restart" },
  { action: "stop", label: "Stop", icon: "stop" },
  { action: "kill", label: "Kill", icon: "kill" },
];

/** Start, restart, stop and kill for the server in scope: only those the caller may use,
 *  enabled when they make sense in the server's state. Kill asks once more. */
export function ServerPowerButtons({
  small = false,
  withKill = true,
}: {
  small?: boolean;
  withKill?: boolean;
}) {
  const { server } = useServerScope();
  const power = usePower(server.id);
  const allowed: Record<PowerAction, boolean> = {
    start: useCan("control.start"),
    restart: useCan("control.restart"),
    stop: useCan("control.stop"),
    kill: useCan("control.kill"),
  };
  const [armedKill, setArmedKill] = useState(false);
  useEffect(() => {
    if (!armedKill) return;
    const timer = window.setTimeout(() => {
      setArmedKill(false);
    }, 4000);
    return () => {
      window.clearTimeout(timer);
    };
  }, [armedKill]);

  const shown = ACTIONS.filter(({ action }) => allowed[action] && (withKill || action !== "kill"));
  if (shown.length === 0) return null;
  return (
    <div className={styles.wrap}>
      <div className={styles.group} role="group" aria-label={`Power of ${server.name}`}>
        {shown.map(({ action, label, icon }) => {
          const armed = action === "kill" && armedKill;
          return (
            <Button
              key={action}
              small={small}
              icon={icon}
              variant={action === "kill" || action === "stop" ? "danger" : "secondary"}
              disabled={power.isPending || !powerOffered(action, server.state, server.suspended)}
              aria-label={armed ? `Confirm: kill ${server.name}` : `${label} ${server.name}`}
              onClick={() => {
                if (action === "kill" && !armedKill) {
                  setArmedKill(true);
                  return;
                }
                setArmedKill(false);
                power.mutate(action);
              }}
            >
              {armed ? "Really kill?" : label}
            </Button>
          );
        })}
      </div>
      {power.isError && (
        <p className={styles.error} role="alert">
          {describeError(power.error)}
        </p>
      )}
    </div>
  );
}
