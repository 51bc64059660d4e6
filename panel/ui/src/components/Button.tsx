import type { ButtonHTMLAttributes, ReactNode } from "react";
import styles from "./Button.module.css";
import { Icon, type IconName } from "./Icon";

export type ButtonVariant = "primary" | "secondary" | "danger" | "ghost";

interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: ButtonVariant;
  small?: boolean;
  icon?: IconName;
  children: ReactNode;
}

export function buttonClass(variant: ButtonVariant = "secondary", small = false): string {
  return [styles.button, styles[variant], small ? styles.small : ""].filter(Boolean).join(" ");
}

export function Button({
  variant = "secondary",
  small = false,
  icon,
  children,
  className,
  type = "button",
  ...rest
}: ButtonProps) {
  return (
    <button
      type={type}
      className={[buttonClass(variant, small), className].filter(Boolean).join(" ")}
      {...rest}
    >
      {icon && <Icon name={icon} size={small ? 16 : 18} />}
      {children}
    </button>
  );
}
