import { lazy, Suspense } from "react";
import { Navigate, createBrowserRouter } from "react-router";
import { Loading } from "../components/Feedback";
import { ServerLayout } from "../features/servers/ServerLayout";
import { ServerOverviewPage } from "../features/servers/ServerOverviewPage";
import { ServersPage } from "../features/servers/ServersPage";
import { NotFoundPage } from "./NotFoundPage";
import { RouteError } from "./RouteError";
import { Shell } from "./Shell";

// The console carries the terminal emulator, the largest part of the app: it loads when first
// opened, so the servers page does not wait for it.
const ConsolePage = lazy(() =>
  import("../features/console/ConsolePage").then((module) => ({ default: module.ConsolePage })),
);

// Every page of the app. A new top-level section (`/account`, `/admin`) must also be listed in
// the panel's CLIENT_SECTIONS (stellarstack/panel/web/spa.py), so it serves the app there.
export const router = createBrowserRouter([
  {
    element: <Shell />,
    errorElement: <RouteError />,
    children: [
      { index: true, element: <ServersPage /> },
      { path: "servers", element: <Navigate to="/" replace /> },
      {
        path: "server/:serverId",
        element: <ServerLayout />,
        children: [
          { index: true, element: <ServerOverviewPage /> },
          {
            path: "console",
            element: (
              <Suspense fallback={<Loading label="Loading the console…" />}>
                <ConsolePage />
              </Suspense>
            ),
          },
        ],
      },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);
