import { useMutation, useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../../api/client";

export const accountKey = ["account"] as const;

export function useAccount() {
  return useQuery({
    queryKey: accountKey,
    queryFn: ({ signal }) => unwrap(api.GET("/api/account", { signal })),
    staleTime: 5 * 60_000,
  });
}

export function useLogout() {
  return useMutation({
    mutationFn: () => unwrap(api.POST("/api/auth/logout")),
    onSuccess: () => {
      window.location.assign("/login");
    },
  });
}
